package org.shimmer.examples.cli.tty;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.assertj.core.api.ListAssert;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.shim.TerminalSize;

/** Raw mode and window sizes on a real pseudo-terminal this test opens. */
class RawModeTest {

    @Test
    void rawModeIsEnteredAndTheSavedAttributesComeBackExactlyOnce() throws Exception {
        try (Pty pty = Pty.open(new TerminalSize(100, 30))) {
            byte[] cooked = Termios.get(pty.slaveFd());
            assertThat(Termios.localFlags(cooked) & (Termios.ICANON | Termios.ECHO | Termios.ISIG))
                    .as("a new pty is cooked").isEqualTo(Termios.ICANON | Termios.ECHO | Termios.ISIG);

            RawMode raw = RawMode.enter(pty.slaveFd());
            assertThat(raw.active()).isTrue();
            assertThat(Termios.localFlags(Termios.get(pty.slaveFd())) & (Termios.ICANON | Termios.ECHO
                    | Termios.ISIG)).as("raw: no line editing, echo or signals").isZero();

            raw.close();
            assertThat(Termios.get(pty.slaveFd())).as("exactly what was saved").isEqualTo(cooked);

            // Once only: a second close must not undo what the user set since.
            Termios.set(pty.slaveFd(), Termios.raw(cooked));
            raw.close();
            assertThat(Termios.localFlags(Termios.get(pty.slaveFd())) & Termios.ICANON).isZero();
            assertNoDescriptorOf(pty.slavePath(), "while open").isNotEmpty();
        }
    }

    @Test
    void aDescriptorThatIsNoTerminalIsLeftAlone() throws Exception {
        try (RawMode raw = RawMode.enter(Integer.MAX_VALUE)) {
            assertThat(raw.active()).isFalse();
        }
        assertThat(Termios.windowSize(Integer.MAX_VALUE)).isEmpty();
    }

    @Test
    void aWindowChangeSignalGivesTheNewSize() throws Exception {
        Path slave;
        try (Pty pty = Pty.open(new TerminalSize(100, 30))) {
            slave = pty.slavePath();
            assertThat(Termios.windowSize(pty.slaveFd())).contains(new TerminalSize(100, 30));
            BlockingQueue<TerminalSize> seen = new ArrayBlockingQueue<>(4);
            WindowChanges changes = WindowChanges.watch(pty.slaveFd(), seen::add);
            try {
                pty.resize(new TerminalSize(132, 43));
                // This JVM is not in the pty's session: the kernel signals its foreground group, so we do.
                Process kill = new ProcessBuilder("kill", "-WINCH", Long.toString(ProcessHandle.current().pid()))
                        .inheritIO().start();
                assertThat(kill.waitFor()).isZero();
                assertThat(seen.poll(10, TimeUnit.SECONDS)).isEqualTo(new TerminalSize(132, 43));
            } finally {
                changes.close();
            }
        }
        assertNoDescriptorOf(slave, "after close").isEmpty();
    }

    private static ListAssert<String> assertNoDescriptorOf(Path slave, String when)
            throws Exception {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return assertThat(fds.map(fd -> {
                try {
                    return Files.readSymbolicLink(fd).toString();
                } catch (Exception gone) {
                    return "";
                }
            }).filter(target -> target.equals(slave.toString()) || target.equals("/dev/ptmx")).toList())
                    .as("descriptors of " + slave + " " + when);
        }
    }
}

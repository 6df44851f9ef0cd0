package org.shimmer.examples.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.shim.ShimException;

class ExitCodesTest {

    @Test
    void aCommandRuncCannotFindIs127() {
        // runc 1.1's words, as both shims pass them on inside the create's failure.
        assertThat(ExitCodes.of(new ShimException("create default/x: OCI runtime create failed: runc create failed:"
                + " unable to start container process: exec: \"nope\": executable file not found in $PATH")))
                .isEqualTo(127);
        assertThat(ExitCodes.of(new RuntimeException("run failed", new NotFoundException("create default/x: exec:"
                + " \"/bin/nope\": stat /bin/nope: no such file or directory")))).isEqualTo(127);
    }

    @Test
    void aCommandThatCannotBeRunIs126() {
        assertThat(ExitCodes.of(new FailedPreconditionException("create default/x: unable to start container"
                + " process: exec: \"/etc\": permission denied"))).isEqualTo(126);
        assertThat(ExitCodes.of(new ShimException("exec: \"/etc/passwd\": exec format error"))).isEqualTo(126);
    }

    /**
     * runc 1.1.5's words for names a shell passes as they are, each name Go's %q inside the words and as it is in
     * the stat's path: a quote in the name gave 125 (`exec: "a\"b": …` never matched `"[^"]*"`).
     */
    @Test
    void aNameGoQuotesWithEscapesStillGives127Or126() {
        Map<String, Integer> statuses = new LinkedHashMap<>();
        statuses.put("exec: \"a\\\"b\": executable file not found in $PATH", 127); // a"b
        statuses.put("exec: \"/x\\\"y\": stat /x\"y: no such file or directory", 127); // /x"y
        statuses.put("exec: \"a\\\\b\": executable file not found in $PATH", 127); // a\b
        statuses.put("exec: \"/x\\\\y\": stat /x\\y: no such file or directory", 127); // /x\y
        statuses.put("exec: \"a\\\\\": executable file not found in $PATH", 127); // a\ : an escape, then the end
        statuses.put("exec: \"a\\\"b\\\\\\\"c\": executable file not found in $PATH", 127); // a"b\"c
        statuses.put("exec: \"/x y\": stat /x y: no such file or directory", 127);
        statuses.put("exec: \"a\\tb\": executable file not found in $PATH", 127);
        statuses.put("exec: \"/x\\ty\": stat /x\ty: no such file or directory", 127);
        statuses.put("exec: \"a\\nb\": executable file not found in $PATH", 127);
        statuses.put("exec: \"/x\\ny\": stat /x\ny: no such file or directory", 127);
        statuses.put("exec: \"é日本\": executable file not found in $PATH", 127);
        statuses.put("exec: \"/\\u00a0\": stat /\u00a0: no such file or directory", 127);
        statuses.put("exec: \"a\\x01b\": executable file not found in $PATH", 127);
        statuses.put("exec: \"/d\\\"ir\": permission denied", 126); // the directory /d"ir
        statuses.put("exec: \"/d\\\\ir\": is a directory", 126);
        statuses.put("exec: \"/d\\nir\": permission denied", 126);
        statuses.put("exec: \"/é\\u00a0\": permission denied", 126);
        // Words inside the name are the name's: they must not decide the status.
        statuses.put("exec: \"x\\\": permission denied\": executable file not found in $PATH", 127);
        statuses.put("exec: \"/x no such file or directory\": permission denied", 126);
        statuses.forEach((words, status) -> {
            assertThat(ExitCodes.of(new ShimException("create task default/x: runc create failed: unable to start"
                    + " container process: " + words))).as("local shim: %s", words).isEqualTo(status);
            assertThat(ExitCodes.of(new RuntimeException("exec failed", new ShimException("start exec exec-1 in task"
                    + " default/x: OCI runtime exec failed: exec failed: unable to start container process: " + words
                    + "\n(UNKNOWN)")))).as("remote shim: %s", words).isEqualTo(status);
        });
    }

    @Test
    void aCliFailureKeepsItsOwnStatusAndMessagesAreOneLine() {
        assertThat(ExitCodes.of(new CliException("bad", 2))).isEqualTo(2);
        assertThat(ExitCodes.message(new ShimException("create default/x: runc said\nno (UNKNOWN)")))
                .isEqualTo("create default/x: runc said; no");
    }

    @Test
    void anyOtherFailureIsShimmersOwn125() {
        assertThat(ExitCodes.of(new NotFoundException("bundle default/x not found"))).isEqualTo(125);
        assertThat(ExitCodes.of(new IllegalStateException((String) null))).isEqualTo(125);
        assertThat(ExitCodes.of(new ShimException("no such file or directory: /state/default/x/config.json")))
                .as("not an exec").isEqualTo(125);
    }
}

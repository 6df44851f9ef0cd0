package org.shimmer.runtime.linux.container;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.image.ImageConfig;
import org.shimmer.runtime.linux.image.ImageStore;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.MountTable;
import org.shimmer.runtime.spec.Spec;

/**
 * Every rule of an image's configuration merged into a spec, and the users of an image read from its layers as
 * overlay would merge them. The whiteouts and the opaque directory are made by a real overlay mount: a delete
 * through it, and a directory removed and made again through it.
 */
class ImageSpecsTest {

    private static final String NAME = "docker.io/library/app:1";
    private static final String DIGEST = "sha256:" + "ab".repeat(32);
    private static final String PASSWD = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"
            + "# a comment\nbob:x:1001:50::/home/bob:/bin/sh\n";
    private static final String GROUP = "root:x:0:\nalice:x:1000:\nstaff:x:50:alice\nwheel:x:10:bob,alice\n";

    @TempDir
    Path temp;

    private Path bottom;
    private ImageUsers users;

    @BeforeEach
    void writeLayers() throws Exception {
        bottom = layer("bottom", PASSWD, GROUP);
        users = new ImageUsers(NAME, List.of(bottom));
    }

    private Path layer(String name, String passwd, String group) throws Exception {
        Path etc = Files.createDirectories(temp.resolve(name).resolve("etc"));
        if (passwd != null) {
            Files.writeString(etc.resolve("passwd"), passwd);
        }
        if (group != null) {
            Files.writeString(etc.resolve("group"), group);
        }
        return temp.resolve(name);
    }

    private static ImageConfig config(List<String> entrypoint, List<String> cmd, List<String> env, String cwd,
            String user) {
        return new ImageConfig(entrypoint, cmd, env, cwd, user, Map.of());
    }

    private Spec merge(Spec spec, ImageConfig config, List<String> entrypoint) {
        return ImageSpecs.merge(spec, config, entrypoint, NAME, DIGEST, users);
    }

    @Test
    void argsAreTheEntrypointThenTheSpecsArgsOrTheImagesCmd() {
        ImageConfig image = config(List.of("/entry", "-v"), List.of("serve", "--port=80"), List.of(), "", "");
        Spec none = Spec.builder().build();
        Spec some = Spec.builder().args("run", "fast").build();

        assertThat(merge(none, image, null).process().args()).containsExactly("/entry", "-v", "serve", "--port=80");
        assertThat(merge(some, image, null).process().args()).containsExactly("/entry", "-v", "run", "fast");
        assertThat(merge(none, image, List.of("/other")).process().args())
                .containsExactly("/other", "serve", "--port=80");
        assertThat(merge(some, image, List.of()).process().args()).containsExactly("run", "fast");
        assertThat(merge(none, config(List.of(), List.of("/bin/sh"), List.of(), "", ""), null).process().args())
                .containsExactly("/bin/sh");
    }

    @Test
    void noCommandAtAllIsRefusedNamingTheImage() {
        assertThatThrownBy(() -> merge(Spec.builder().build(), config(List.of(), List.of(), List.of(), "", ""), null))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining(NAME)
                .hasMessageContaining("no command");
        // An entrypoint given as no words clears the image's, and then nothing is left either.
        assertThatThrownBy(() -> merge(Spec.builder().build(), config(List.of("/e"), List.of(), List.of(), "", ""),
                List.of()))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining(NAME);
    }

    @Test
    void envIsTheImagesReplacedByName() {
        ImageConfig image = config(List.of(), List.of("/bin/sh"),
                List.of("A=1", "PATH=/opt/jdk/bin:/bin", "EMPTY=", "B=x=y"), "", "");
        Spec spec = Spec.builder().env("A", "2").env("C", "3").build();

        Map<String, String> env = merge(spec, image, null).process().env();
        assertThat(env).containsExactly(Map.entry("A", "2"), Map.entry("PATH", "/opt/jdk/bin:/bin"),
                Map.entry("EMPTY", ""), Map.entry("B", "x=y"), Map.entry("C", "3"));

        // A PATH the caller set is the caller's; the default one stays only when the image has none.
        assertThat(merge(Spec.builder().env("PATH", "/mine").build(), image, null).process().env())
                .containsEntry("PATH", "/mine");
        assertThat(merge(spec, config(List.of(), List.of("/bin/sh"), List.of(), "", ""), null).process().env())
                .containsEntry("PATH", Spec.DEFAULT_PATH);
        assertThatThrownBy(() -> merge(spec, config(List.of(), List.of("/bin/sh"), List.of("=x"), "", ""), null))
                .isInstanceOf(InvalidSpecException.class).hasMessageContaining(NAME).hasMessageContaining("=x");
    }

    @Test
    void cwdIsTheSpecsUnlessRoot() {
        ImageConfig image = config(List.of(), List.of("/bin/sh"), List.of(), "/app", "");
        assertThat(merge(Spec.builder().build(), image, null).process().cwd()).isEqualTo("/app");
        assertThat(merge(Spec.builder().cwd("/work").build(), image, null).process().cwd()).isEqualTo("/work");
        assertThat(merge(Spec.builder().build(), config(List.of(), List.of("/bin/sh"), List.of(), "", ""), null)
                .process().cwd()).isEqualTo("/");
    }

    @Test
    void theImagesDigestAndNameAreAnnotations() {
        Spec merged = merge(Spec.builder().annotation("mine", "1").build(),
                config(List.of(), List.of("/bin/sh"), List.of(), "", ""), null);
        assertThat(merged.annotations()).containsEntry(ImageStore.DIGEST_ANNOTATION, DIGEST)
                .containsEntry(ImageStore.NAME_ANNOTATION, NAME).containsEntry("mine", "1");
    }

    @Test
    void usersByNumberAreTakenAsTheyAreAndByNameLookedUp() {
        assertThat(users.resolve("2000:3000")).isEqualTo(new ImageUsers.User(2000, 3000, List.of()));
        assertThat(users.resolve("2000")).isEqualTo(new ImageUsers.User(2000, 0, List.of()));
        // A uid listed in /etc/passwd gets its primary group and memberships, as docker gives them.
        assertThat(users.resolve("1000")).isEqualTo(new ImageUsers.User(1000, 1000, List.of(50, 10)));
        assertThat(users.resolve("alice")).isEqualTo(new ImageUsers.User(1000, 1000, List.of(50, 10)));
        assertThat(users.resolve("bob")).isEqualTo(new ImageUsers.User(1001, 50, List.of(10)));
        assertThat(users.resolve("alice:staff")).isEqualTo(new ImageUsers.User(1000, 50, List.of(10)));
        assertThat(users.resolve("bob:7")).isEqualTo(new ImageUsers.User(1001, 7, List.of(10)));
    }

    @Test
    void anUnknownUserOrGroupIsRefusedNamingItAndTheImage() throws Exception {
        assertThatThrownBy(() -> users.resolve("mallory"))
                .isInstanceOf(InvalidSpecException.class).hasMessageContaining("mallory").hasMessageContaining(NAME);
        assertThatThrownBy(() -> users.resolve("alice:nogroup"))
                .isInstanceOf(InvalidSpecException.class).hasMessageContaining("nogroup").hasMessageContaining(NAME);
        assertThatThrownBy(() -> users.resolve(":1"))
                .isInstanceOf(InvalidSpecException.class).hasMessageContaining(NAME);
        // No /etc/passwd at all: a name is unknown, a number is fine.
        ImageUsers none = new ImageUsers(NAME, List.of(Files.createDirectories(temp.resolve("no-etc"))));
        assertThatThrownBy(() -> none.resolve("alice")).isInstanceOf(InvalidSpecException.class);
        assertThat(none.resolve("5")).isEqualTo(new ImageUsers.User(5, 0, List.of()));
        // Ten digits are a number; past runc's limit, out of range: never looked up as a name.
        assertThat(none.resolve("1000000000:2147483647")).isEqualTo(new ImageUsers.User(1000000000, 2147483647,
                List.of()));
        for (String huge : List.of("2147483648", "0:4294967295", "99999999999999999999999")) {
            assertThatThrownBy(() -> users.resolve(huge)).isInstanceOf(InvalidSpecException.class)
                    .hasMessageContaining("out of range").hasMessageContaining(huge).hasMessageContaining(NAME);
        }
    }

    @Test
    void theImagesUserAppliesOnlyToARootSpecWithoutGroups() {
        ImageConfig image = config(List.of(), List.of("/bin/sh"), List.of(), "", "alice");
        Spec.Process root = merge(Spec.builder().build(), image, null).process();
        assertThat(List.of(root.uid(), root.gid())).containsExactly(1000, 1000);
        assertThat(root.additionalGids()).containsExactly(50, 10);

        Spec.Process mine = merge(Spec.builder().user(5, 6).build(), image, null).process();
        assertThat(List.of(mine.uid(), mine.gid())).containsExactly(5, 6);
        Spec.Process grouped = merge(Spec.builder().additionalGids(9).build(), image, null).process();
        assertThat(List.of(grouped.uid(), grouped.gid(), grouped.additionalGids())).containsExactly(0, 0, List.of(9));
    }

    @Test
    void theTopmostLayerHoldingPasswdWinsAndALayerWithoutEtcIsSeenThrough() throws Exception {
        Path top = layer("top", "carol:x:3000:3000::/:/bin/sh\n", null);
        Path middle = Files.createDirectories(temp.resolve("middle").resolve("usr"));
        ImageUsers stacked = new ImageUsers(NAME, List.of(top, middle.getParent(), bottom));

        assertThat(stacked.resolve("carol").uid()).isEqualTo(3000);
        assertThatThrownBy(() -> stacked.resolve("alice")).isInstanceOf(InvalidSpecException.class);
        // /etc/group comes from the bottom layer: the top one has none.
        assertThat(ImageUsers.find(List.of(top, bottom), "group")).contains(bottom.resolve("etc/group"));
    }

    /**
     * Links of {@code d/../} repeated, 40 of them, over 200 layers that each hold {@code d}: every {@code d} was looked
     * up again in every layer, 64 000 times (over two minutes for 100 layers, for each run of the image). Each path
     * of the merged root is now looked up once; the timeout is a hundred times what that takes.
     */
    @Test
    @Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
    void linksThatRevisitADirectoryCostOneLookupOfItNotOnePerVisit() throws Exception {
        List<Path> layers = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            layers.addFirst(Files.createDirectories(temp.resolve("tall" + i).resolve("d")).getParent());
        }
        Path top = layers.getFirst();
        String revisits = "d/../".repeat(800);
        for (int i = 0; i < ImageUsers.MAX_LINKS - 1; i++) {
            Files.createSymbolicLink(top.resolve(i == 0 ? "etc" : "s" + i), Path.of(revisits + "s" + (i + 1)));
        }
        Files.createSymbolicLink(top.resolve("s" + (ImageUsers.MAX_LINKS - 1)), Path.of("real"));
        Files.writeString(Files.createDirectories(top.resolve("real")).resolve("passwd"),
                "dave:x:4000:4001::/:/bin/sh\n");

        ImageUsers.User dave = new ImageUsers(NAME, layers).resolve("dave");

        assertThat(List.of(dave.uid(), dave.gid())).containsExactly(4000, 4001);
    }

    /**
     * A link to a host path is read inside the image, where that path is not: the host's file is never read, and
     * {@code etc} or the file as a link to a host directory finds nothing.
     */
    @Test
    void aSymbolicLinkNeverLeadsOutOfTheImage() throws Exception {
        Path host = Files.writeString(temp.resolve("host-passwd"), "eve:x:666:666::/:/bin/sh\n");
        Path linked = Files.createDirectories(temp.resolve("linked").resolve("etc"));
        Files.createSymbolicLink(linked.resolve("passwd"), host);
        Path linkedEtc = Files.createDirectories(temp.resolve("linked-etc"));
        Files.createSymbolicLink(linkedEtc.resolve("etc"), bottom.resolve("etc"));
        Path escaping = Files.createDirectories(temp.resolve("escaping").resolve("etc"));
        Files.createSymbolicLink(escaping.resolve("passwd"), Path.of("../../../host-passwd"));

        assertThatThrownBy(() -> new ImageUsers(NAME, List.of(linked.getParent(), bottom)).resolve("eve"))
                .isInstanceOf(InvalidSpecException.class);
        assertThat(ImageUsers.find(List.of(linked.getParent(), bottom), "passwd")).isEmpty();
        assertThat(ImageUsers.find(List.of(linkedEtc, bottom), "passwd")).isEmpty();
        assertThat(ImageUsers.find(List.of(escaping.getParent()), "passwd")).isEmpty();
    }

    /**
     * {@code /etc/passwd} or {@code /etc} a link within the image (busybox, distroless and NixOS images have
     * them), across layers: followed as in the container, an absolute or {@code ..}-escaping link from the image's
     * root; a bare uid then gets its passwd group. The old lookup never followed one: "unknown user".
     */
    @Test
    void aSymbolicLinkIsFollowedWithinTheImageAcrossLayers() throws Exception {
        Path usr = Files.createDirectories(temp.resolve("usr-layer").resolve("usr/share/base"));
        Files.writeString(usr.resolve("passwd"), PASSWD);
        Files.writeString(usr.resolve("group"), GROUP);
        Path layerWithUsr = usr.getParent().getParent().getParent();

        Path relative = Files.createDirectories(temp.resolve("relative").resolve("etc"));
        Files.createSymbolicLink(relative.resolve("passwd"), Path.of("../usr/share/base/passwd"));
        Files.createSymbolicLink(relative.resolve("group"), Path.of("../usr/share/base/group"));
        Path absolute = Files.createDirectories(temp.resolve("absolute").resolve("etc"));
        Files.createSymbolicLink(absolute.resolve("passwd"), Path.of("/usr/share/base/passwd"));
        Files.createSymbolicLink(absolute.resolve("group"), Path.of("/usr/share/base/group"));
        Path escaping = Files.createDirectories(temp.resolve("escaping").resolve("etc"));
        Files.createSymbolicLink(escaping.resolve("passwd"), Path.of("../../../../../usr/./share//base/passwd"));
        Files.createSymbolicLink(escaping.resolve("group"), Path.of("../../../../../usr/share/base/group"));
        Path etcLink = Files.createDirectories(temp.resolve("etc-link"));
        Files.createSymbolicLink(etcLink.resolve("etc"), Path.of("usr/share/base"));

        for (Path top : List.of(relative.getParent(), absolute.getParent(), escaping.getParent(), etcLink)) {
            ImageUsers linked = new ImageUsers(NAME, List.of(top, layerWithUsr));
            assertThat(linked.resolve("alice")).as(top.toString())
                    .isEqualTo(new ImageUsers.User(1000, 1000, List.of(50, 10)));
            assertThat(linked.resolve("1001")).as(top.toString()).isEqualTo(new ImageUsers.User(1001, 50, List.of(10)));
        }
        // A link chain through a linked directory.
        Path chain = Files.createDirectories(temp.resolve("chain").resolve("etc"));
        Files.createSymbolicLink(chain.getParent().resolve("base"), Path.of("usr/share/base"));
        Files.createSymbolicLink(chain.resolve("passwd"), Path.of("/base/../base/passwd"));
        assertThat(ImageUsers.find(List.of(chain.getParent(), layerWithUsr), "passwd"))
                .contains(usr.resolve("passwd"));
    }

    /** A link loop, or a chain longer than the kernel follows, is refused naming the file and the image. */
    @Test
    void aLinkLoopIsRefusedNamingTheImage() throws Exception {
        Path loop = Files.createDirectories(temp.resolve("loop").resolve("etc"));
        Files.createSymbolicLink(loop.resolve("passwd"), Path.of("/etc/passwd"));
        assertThatThrownBy(() -> new ImageUsers(NAME, List.of(loop.getParent())).resolve("alice"))
                .isInstanceOf(InvalidSpecException.class)
                .hasMessageContaining(NAME)
                .hasMessageContaining("/etc/passwd")
                .hasMessageContaining("symbolic links");
    }

    /**
     * A layer made by overlay itself: {@code /etc/passwd} deleted through the mount (a whiteout), or {@code /etc}
     * removed and made again (an opaque directory holding only a group file).
     */
    @Test
    void aWhiteoutOrAnOpaqueEtcAboveStopsTheSearch() throws Exception {
        Path deleted = throughOverlay("deleted", merged -> Files.delete(merged.resolve("etc/passwd")));
        assertThat(Files.readAttributes(deleted.resolve("etc/passwd"), "unix:mode,rdev",
                LinkOption.NOFOLLOW_LINKS)).containsEntry("rdev", 0L);
        assertThat(ImageUsers.find(List.of(deleted, bottom), "passwd")).isEmpty();
        assertThat(ImageUsers.find(List.of(deleted, bottom), "group")).contains(bottom.resolve("etc/group"));
        assertThatThrownBy(() -> new ImageUsers(NAME, List.of(deleted, bottom)).resolve("alice"))
                .isInstanceOf(InvalidSpecException.class).hasMessageContaining("alice");

        Path opaque = throughOverlay("opaque", merged -> {
            Files.delete(merged.resolve("etc/passwd"));
            Files.delete(merged.resolve("etc/group"));
            Files.delete(merged.resolve("etc"));
            Files.createDirectory(merged.resolve("etc"));
            Files.writeString(merged.resolve("etc/group"), "g:x:1:\n");
        });
        assertThat(LinuxCalls.lgetxattr(opaque.resolve("etc"), "trusted.overlay.opaque")).containsExactly('y');
        assertThat(ImageUsers.find(List.of(opaque, bottom), "passwd")).isEmpty();
        assertThat(ImageUsers.find(List.of(opaque, bottom), "group")).contains(opaque.resolve("etc/group"));
    }

    @FunctionalInterface
    private interface Change {
        void apply(Path merged) throws Exception;
    }

    /** The upper directory of an overlay on {@code bottom} after {@code change} through it. */
    private Path throughOverlay(String name, Change change) throws Exception {
        Path upper = Files.createDirectories(temp.resolve(name));
        Path work = Files.createDirectories(temp.resolve(name + "-work"));
        Path merged = Files.createDirectories(temp.resolve(name + "-merged"));
        LinuxCalls.mount("overlay", merged.toString(), "overlay", 0,
                "lowerdir=" + bottom + ",upperdir=" + upper + ",workdir=" + work);
        try {
            change.apply(merged);
        } finally {
            LinuxCalls.umount2(merged.toString(), 0);
        }
        assertThat(MountTable.atOrUnder(MountTable.mountPoints(), temp.toRealPath())).isEmpty();
        return upper;
    }
}

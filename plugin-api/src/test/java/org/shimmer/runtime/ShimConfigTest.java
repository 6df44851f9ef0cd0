package org.shimmer.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import reactor.core.publisher.Mono;

class ShimConfigTest {

    private final Bundle bundle = new Bundle() {
        public String id() { return "c1"; }
        public String namespace() { return "ns1"; }
        public Path path() { return Path.of("/state/ns1/c1"); }
        public Path workDir() { return Path.of("/work/ns1/c1"); }
        public Mono<Void> delete() { return Mono.empty(); }
        public Mono<org.shimmer.runtime.shim.ShimClient> newShimClient(
                org.shimmer.runtime.shim.ShimOpt opt, RuncOptions options) { return Mono.empty(); }
    };

    @Test
    void absentOptionsGiveDefaults() {
        ShimConfig config = ShimConfig.of(bundle, null);

        assertThat(config).isEqualTo(new ShimConfig(Path.of("/state/ns1/c1"), Path.of("/work/ns1/c1"), "ns1",
                Optional.empty(), RuncOptions.DEFAULT_RUNTIME_ROOT, false, "runc"));
        assertThat(ShimConfig.of(bundle, RuncOptions.defaults())).isEqualTo(config);
    }

    @Test
    void givenOptionsWin() {
        RuncOptions options = RuncOptions.defaults()
                .withCriuPath("/usr/sbin/criu")
                .withRuntimeRoot("/run/custom")
                .withSystemdCgroup(true)
                .withBinaryName("crun");

        ShimConfig config = ShimConfig.of(bundle, options);

        assertThat(config.criuPath()).contains("/usr/sbin/criu");
        assertThat(config.runtimeRoot()).isEqualTo("/run/custom");
        assertThat(config.systemdCgroup()).isTrue();
        assertThat(config.runcBinary()).isEqualTo("crun");
        assertThat(config.namespace()).isEqualTo("ns1");
    }

    @Test
    void blankOptionsCountAsAbsent() {
        RuncOptions options = new RuncOptions(" ", "", false, "");

        assertThat(ShimConfig.of(bundle, options)).isEqualTo(ShimConfig.of(bundle, null));
    }
}

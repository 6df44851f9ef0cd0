package org.shimmer.runtime.linux.plugin;

import org.pf4j.Extension;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.linux.LinuxRuntime;

/**
 * The {@link org.shimmer.runtime.RuntimePlugin} extension PF4J hands to hosts: the Linux runtime with the default
 * roots, on the started plugin's resources and shims, shared by every instance PF4J makes. Hosts pick other roots
 * with {@code withConfig}.
 */
@Extension
public final class LinuxRuntimeExtension extends LinuxRuntime {

    public LinuxRuntimeExtension() {
        super(RuntimeConfig.defaults(), LinuxRuntimePlugin.shared());
    }
}

package org.shimmer.runtime.image;

import java.util.List;
import java.util.Map;

/**
 * The part of an image's configuration a container run from it starts with, as containerd's
 * {@code WithImageConfig} reads it: how {@link org.shimmer.runtime.RunRequest#of(String, String,
 * org.shimmer.runtime.spec.Spec, Image)} merges it into the caller's spec is told there.
 *
 * @param entrypoint the command's fixed head ({@code Entrypoint}), maybe empty
 * @param cmd the default arguments ({@code Cmd}), replaced by the caller's arguments, maybe empty
 * @param env {@code NAME=value} entries ({@code Env}), in order
 * @param workingDir the working directory ({@code WorkingDir}), empty for the root
 * @param user {@code user}, {@code uid}, {@code user:group} or {@code uid:gid} ({@code User}), empty for root
 * @param labels the image's labels ({@code Labels})
 */
public record ImageConfig(List<String> entrypoint, List<String> cmd, List<String> env, String workingDir,
        String user, Map<String, String> labels) {

    public ImageConfig {
        entrypoint = entrypoint == null ? List.of() : List.copyOf(entrypoint);
        cmd = cmd == null ? List.of() : List.copyOf(cmd);
        env = env == null ? List.of() : List.copyOf(env);
        workingDir = workingDir == null ? "" : workingDir;
        user = user == null ? "" : user;
        labels = labels == null ? Map.of() : Map.copyOf(labels);
    }
}

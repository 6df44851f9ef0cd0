package org.shimmer.runtime.linux.container;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.image.ImageConfig;
import org.shimmer.runtime.linux.image.ImageStore;
import org.shimmer.runtime.spec.Spec;

/**
 * The caller's spec with an image's configuration as its defaults, by the rules of
 * {@code RunRequest.of(String, String, Spec, Image)} (containerd's {@code WithImageConfig}, docker's command):
 * args are the entrypoint then the spec's args, or the image's cmd when the spec has none; env is the image's,
 * each entry replaced by the spec's of the same name, then the spec's others; cwd is the spec's unless it is
 * {@code /}; the user is the spec's unless it is root with no additional groups ({@link ImageUsers}). The image's
 * digest and name are set as annotations ({@link ImageStore#DIGEST_ANNOTATION}: what keeps the image's lease).
 *
 * <p>One exception to the env rule: a spec's {@code PATH} equal to {@link Spec#DEFAULT_PATH} does not replace the
 * image's. Every spec carries that default (containerd's default spec carries none), and an image that sets its
 * own {@code PATH} (a JDK's, a language's) lost it, so its entrypoint was not found.
 */
public final class ImageSpecs {

    private static final String PATH = "PATH";

    private ImageSpecs() {}

    /**
     * The merged spec.
     *
     * @param entrypoint the request's entrypoint replacing the image's, or null to keep the image's
     * @param users the image's users, asked only when the image's user applies
     * @throws InvalidSpecException naming the image when the merged command is empty, its working directory or
     *     environment is invalid, or its user or group is unknown
     */
    public static Spec merge(Spec spec, ImageConfig config, List<String> entrypoint, String name, String digest,
            ImageUsers users) {
        Spec.Process process = spec.process();
        List<String> args = new ArrayList<>(entrypoint != null ? entrypoint : config.entrypoint());
        args.addAll(process.args().isEmpty() ? config.cmd() : process.args());
        if (args.isEmpty()) {
            throw new InvalidSpecException("run image " + name + ": no command: the image has no entrypoint and no"
                    + " cmd, and the spec no args");
        }
        Spec.Process.Builder merged = process.toBuilder().args(args).env(env(process.env(), config.env(), name));
        if (process.cwd().equals("/") && !config.workingDir().isEmpty()) {
            merged.cwd(config.workingDir().startsWith("/") ? config.workingDir() : "/" + config.workingDir());
        }
        if (process.uid() == 0 && process.gid() == 0 && process.additionalGids().isEmpty()
                && !config.user().isEmpty()) {
            ImageUsers.User user = users.resolve(config.user());
            merged.user(user.uid(), user.gid())
                    .additionalGids(user.additionalGids().stream().mapToInt(Integer::intValue).toArray());
        }
        try {
            return spec.toBuilder()
                    .process(merged.build())
                    .annotation(ImageStore.DIGEST_ANNOTATION, digest)
                    .annotation(ImageStore.NAME_ANNOTATION, name)
                    .build();
        } catch (InvalidSpecException invalid) {
            throw new InvalidSpecException("run image " + name + ": " + invalid.getMessage(), invalid);
        }
    }

    private static Map<String, String> env(Map<String, String> spec, List<String> image, String name) {
        Map<String, String> env = new LinkedHashMap<>();
        for (String entry : image) {
            int equals = entry.indexOf('=');
            String key = equals < 0 ? entry : entry.substring(0, equals);
            if (key.isEmpty()) {
                throw new InvalidSpecException("run image " + name + ": env entry \"" + entry + "\" has no name");
            }
            env.put(key, equals < 0 ? "" : entry.substring(equals + 1));
        }
        spec.forEach((key, value) -> {
            if (!(key.equals(PATH) && value.equals(Spec.DEFAULT_PATH) && env.containsKey(PATH))) {
                // A name the image has keeps its place: replaced, not moved.
                env.put(key, value);
            }
        });
        return env;
    }
}

package org.shimmer.examples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.spec.Capabilities;
import org.shimmer.runtime.spec.Spec;

/**
 * The process a container was created with, read from its bundle's {@code config.json}: what {@code exec} starts
 * from, as {@code ctr task exec} and docker do (environment, user, directory, capabilities, limits).
 */
final class ContainerProcess {

    private ContainerProcess() {}

    /** A builder starting from the bundle's process; fields the file lacks keep the builder's defaults. */
    static Spec.Process.Builder read(Bundle bundle) {
        JsonNode root;
        try {
            root = Json.mapper().readTree(Files.readAllBytes(bundle.configFile()));
        } catch (IOException e) {
            throw new CliException("cannot read " + bundle.configFile() + ": " + e.getMessage());
        }
        Spec.Process.Builder builder = Spec.Process.builder();
        JsonNode process = root == null ? null : root.get("process");
        if (process == null || !process.isObject()) {
            return builder;
        }
        JsonNode env = process.get("env");
        if (env != null && env.isArray()) {
            for (JsonNode entry : env) {
                String[] pair = entry.asText().split("=", 2);
                builder.env(pair[0], pair.length == 2 ? pair[1] : "");
            }
        }
        if (process.hasNonNull("cwd")) {
            builder.cwd(process.get("cwd").asText());
        }
        JsonNode user = process.get("user");
        if (user != null && user.isObject()) {
            builder.user(user.path("uid").asInt(0), user.path("gid").asInt(0));
            JsonNode groups = user.get("additionalGids");
            if (groups != null && groups.isArray()) {
                int[] gids = new int[groups.size()];
                for (int i = 0; i < gids.length; i++) {
                    gids[i] = groups.get(i).asInt();
                }
                builder.additionalGids(gids);
            }
        }
        JsonNode capabilities = process.get("capabilities");
        if (capabilities != null && capabilities.isObject()) {
            builder.capabilities(new Capabilities(names(capabilities, "bounding"), names(capabilities, "effective"),
                    names(capabilities, "permitted"), names(capabilities, "inheritable"),
                    names(capabilities, "ambient")));
        }
        JsonNode rlimits = process.get("rlimits");
        if (rlimits != null && rlimits.isArray()) {
            builder.clearRlimits();
            for (JsonNode rlimit : rlimits) {
                builder.rlimit(rlimit.path("type").asText(), rlimit.path("soft").asLong(),
                        rlimit.path("hard").asLong());
            }
        }
        if (process.has("noNewPrivileges")) {
            builder.noNewPrivileges(process.get("noNewPrivileges").asBoolean());
        }
        return builder;
    }

    private static Set<String> names(JsonNode capabilities, String set) {
        List<String> names = new ArrayList<>();
        JsonNode array = capabilities.get(set);
        if (array != null && array.isArray()) {
            array.forEach(name -> names.add(name.asText()));
        }
        return new LinkedHashSet<>(names);
    }
}

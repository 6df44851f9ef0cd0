package org.shimmer.runtime.linux.bundle;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.util.JsonRecyclerPools;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.shimmer.runtime.InvalidSpecException;
import org.shimmer.runtime.shim.TerminalSize;

/** Checks an OCI runtime spec (a bundle's, or an exec's process) before any of it reaches the disk or a shim. */
public final class Specs {

    // Jackson's default buffer recycler keeps a ThreadLocal on every thread that parses; a value of a plugin class
    // on a host thread pins the plugin's class loader after unload. A shared pool keeps nothing per thread.
    private static final ObjectMapper MAPPER = JsonMapper.builder(JsonFactory.builder()
                    .recyclerPool(JsonRecyclerPools.newConcurrentDequePool())
                    .build())
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
            // Error messages name the position, not a copy of what may be a very large spec.
            .disable(StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION)
            .build();

    private Specs() {}

    /**
     * Requires {@code spec} to be one JSON object, nothing before or after it.
     *
     * @param owner names the bundle or process in the error message
     * @throws InvalidSpecException saying what the spec is instead
     */
    public static void requireJsonObject(String owner, byte[] spec) {
        if (spec == null || spec.length == 0) {
            throw new InvalidSpecException("invalid spec for " + owner + ": empty, expected a JSON object");
        }
        JsonNode tree;
        try {
            tree = MAPPER.readTree(spec);
        } catch (JsonProcessingException e) {
            throw new InvalidSpecException(
                    "invalid spec for " + owner + ": not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new InvalidSpecException("invalid spec for " + owner + ": unreadable: " + e.getMessage(), e);
        }
        if (tree == null || tree.isMissingNode()) {
            throw new InvalidSpecException("invalid spec for " + owner + ": no JSON value, expected a JSON object");
        }
        if (!tree.isObject()) {
            throw new InvalidSpecException("invalid spec for " + owner + ": a JSON "
                    + tree.getNodeType().name().toLowerCase(java.util.Locale.ROOT) + ", expected a JSON object");
        }
    }

    /**
     * Requires an exec's process spec (a JSON object, checked before) to ask for a terminal exactly when its stdio is
     * one: runc given a terminal process without a console socket fails it at start, and the runc shim given a
     * terminal stdio for a process without one copies from a console that never comes.
     */
    public static void requireTerminalAgrees(String owner, byte[] processSpec, boolean terminalStdio) {
        requireAgreement(owner, tree(owner, processSpec).path("terminal").asBoolean(false), terminalStdio);
    }

    /** {@link #requireTerminalAgrees} for the bundle's {@code config.json} at create. Blocking. */
    public static void requireBundleTerminalAgrees(String owner, Path configJson, boolean terminalStdio)
            throws IOException {
        JsonNode spec = tree(owner, Files.readAllBytes(configJson));
        requireAgreement(owner, spec.path("process").path("terminal").asBoolean(false), terminalStdio);
    }

    private static void requireAgreement(String owner, boolean terminal, boolean terminalStdio) {
        if (terminal != terminalStdio) {
            throw InvalidSpecException.ofField("process.terminal", terminal
                    ? "true for " + owner + ", but its stdio is not a terminal (use Stdio.terminal)"
                    : "false for " + owner + ", but its stdio is a terminal (set process.terminal)");
        }
    }

    /**
     * The process spec with {@code consoleSize} set to {@code size}: runc sizes an exec's terminal before the
     * process runs, where a resize after the start raced with the process reading its size.
     */
    public static byte[] withConsoleSize(String owner, byte[] processSpec, TerminalSize size) {
        ObjectNode process = (ObjectNode) tree(owner, processSpec);
        ObjectNode console = process.putObject("consoleSize");
        console.put("height", size.height());
        console.put("width", size.width());
        try {
            return MAPPER.writeValueAsBytes(process);
        } catch (JsonProcessingException e) {
            throw new InvalidSpecException("invalid spec for " + owner + ": " + e.getOriginalMessage(), e);
        }
    }

    private static JsonNode tree(String owner, byte[] spec) {
        requireJsonObject(owner, spec);
        try {
            return MAPPER.readTree(spec);
        } catch (IOException e) {
            throw new InvalidSpecException("invalid spec for " + owner + ": unreadable: " + e.getMessage(), e);
        }
    }
}

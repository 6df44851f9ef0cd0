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
import java.util.Locale;
import org.shimmer.runtime.InvalidSpecException;

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
        parseObject(owner, spec);
    }

    /**
     * {@code spec}, required to be one JSON object as {@link #requireJsonObject} does, as a tree.
     *
     * @throws InvalidSpecException saying what the spec is instead
     */
    public static JsonNode jsonObject(String owner, byte[] spec) {
        return parseObject(owner, spec);
    }

    /**
     * Requires the process of {@code spec} (a bundle's {@code config.json} with {@code bundle}, else an exec's
     * process) to ask for a terminal exactly when its stdio is one ({@code terminal}): runc would otherwise make a
     * terminal nobody holds, or none for a stdio that is one.
     *
     * @throws InvalidSpecException naming {@code owner} and the field
     */
    public static void requireTerminal(String owner, byte[] spec, boolean bundle, boolean terminal) {
        JsonNode process = bundle ? parseObject(owner, spec).path("process") : parseObject(owner, spec);
        boolean asked = process.path("terminal").asBoolean(false);
        if (asked != terminal) {
            throw InvalidSpecException.ofField("process.terminal", asked + " for " + owner
                    + (terminal ? ", but its stdio is a terminal" : ", but its stdio is no terminal (Stdio.terminal)"));
        }
    }

    /** An exec's process with {@code consoleSize} set, so runc sizes its terminal before the process runs. */
    public static byte[] withConsoleSize(String owner, byte[] process, int columns, int rows) {
        ObjectNode tree = (ObjectNode) parseObject(owner, process);
        ObjectNode size = tree.putObject("consoleSize");
        size.put("height", rows);
        size.put("width", columns);
        try {
            return MAPPER.writeValueAsBytes(tree);
        } catch (JsonProcessingException e) {
            throw new InvalidSpecException("invalid spec for " + owner + ": " + e.getOriginalMessage(), e);
        }
    }

    /** UTF-8 JSON never holds a NUL byte (a string escapes it); UTF-16 and UTF-32 hold one in every ASCII char. */
    private static boolean containsNul(byte[] spec) {
        for (byte b : spec) {
            if (b == 0) {
                return true;
            }
        }
        return false;
    }

    private static JsonNode parseObject(String owner, byte[] spec) {
        if (spec == null || spec.length == 0) {
            throw new InvalidSpecException("invalid spec for " + owner + ": empty, expected a JSON object");
        }
        int first = 0;
        while (first < spec.length && (spec[first] == ' ' || spec[first] == '\t' || spec[first] == '\n'
                || spec[first] == '\r')) {
            first++;
        }
        // Jackson detects a byte-order mark and UTF-16 or UTF-32 from the first bytes; runc (Go) reads UTF-8 only and
        // refused such a spec after the checks here had passed it.
        if (first < spec.length && (spec[first] & 0x80) != 0 || containsNul(spec)) {
            throw new InvalidSpecException("invalid spec for " + owner + ": not UTF-8 JSON (a byte-order mark, or"
                    + " UTF-16 or UTF-32), expected a JSON object in UTF-8");
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
                    + tree.getNodeType().name().toLowerCase(Locale.ROOT) + ", expected a JSON object");
        }
        return tree;
    }
}

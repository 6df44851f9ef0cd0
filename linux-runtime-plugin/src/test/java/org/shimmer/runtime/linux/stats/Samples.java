package org.shimmer.runtime.linux.stats;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import org.shimmer.runtime.shim.Stats;

/** The stats samples under {@code src/test/resources/stats} (their README says where each comes from). */
final class Samples {

    private Samples() {}

    static Stats load(String typeUrl, String name) {
        try (InputStream in = Samples.class.getResourceAsStream("/stats/" + name)) {
            if (in == null) {
                throw new IllegalStateException("no sample " + name);
            }
            return new Stats(typeUrl, in.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}

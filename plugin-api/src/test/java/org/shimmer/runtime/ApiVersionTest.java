package org.shimmer.runtime;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;
import org.junit.jupiter.api.Test;

/** The API's version is the build's: the constant hosts read and the property the plugin's requires is made of. */
class ApiVersionTest {

    @Test
    void apiVersionIsTheBuildsApiVersionProperty() throws IOException {
        Properties filtered = new Properties();
        try (InputStream in = ApiVersionTest.class.getResourceAsStream("/api-version.properties")) {
            filtered.load(in);
        }
        assertThat(RuntimePlugin.API_VERSION).isEqualTo(filtered.getProperty("shimmer.api.version"))
                .matches("\\d+\\.\\d+\\.\\d+");
    }
}

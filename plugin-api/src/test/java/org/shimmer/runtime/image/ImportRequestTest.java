package org.shimmer.runtime.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.shimmer.runtime.InvalidIdentifierException;

class ImportRequestTest {

    @Test
    void takesTheLayoutsNameUnlessOneIsGiven() {
        ImportRequest request = ImportRequest.of(Path.of("rel/busybox.tar"));
        assertThat(request.layout()).isEqualTo(Path.of("rel/busybox.tar").toAbsolutePath());
        assertThat(request.name()).isNull();
        assertThat(request.withName("app").name()).isEqualTo("app:latest");
        assertThat(request.name()).as("immutable").isNull();
    }

    @Test
    void checksTheNameWhenGiven() {
        assertThatThrownBy(() -> ImportRequest.of(Path.of("x")).withName("Bad Name"))
                .isInstanceOf(InvalidIdentifierException.class)
                .hasMessageContaining("\"Bad Name\"");
    }
}

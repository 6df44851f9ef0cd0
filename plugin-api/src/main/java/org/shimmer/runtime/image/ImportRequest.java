package org.shimmer.runtime.image;

import java.nio.file.Path;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * What {@link Images#importLayout(ImportRequest)} imports. Immutable; every {@code with*} method returns a modified
 * copy.
 */
public final class ImportRequest {

    private final Path layout;
    private final String name;
    private final Consumer<ImportProgress> progress;

    private ImportRequest(Path layout, String name, Consumer<ImportProgress> progress) {
        this.layout = layout;
        this.name = name;
        this.progress = progress;
    }

    /**
     * An import of the OCI image layout at {@code layout}, a directory or a tar of one, named as the layout names
     * it: its manifest's {@code org.opencontainers.image.ref.name} annotation; a bare tag there (as {@code umoci}
     * and {@code skopeo oci:DIR:TAG} write) is put after the layout's file name ({@code busybox.tar} with
     * {@code v1} is {@code busybox:v1}).
     */
    public static ImportRequest of(Path layout) {
        return new ImportRequest(Objects.requireNonNull(layout, "layout").toAbsolutePath(), null, progress -> {});
    }

    /** The image's name instead of the layout's ({@link ImageNames}); checked now. */
    public ImportRequest withName(String name) {
        return new ImportRequest(layout, ImageNames.normalize(name), progress);
    }

    /** Told how far the import is, on the runtime's blocking scheduler; it must not block. */
    public ImportRequest withProgress(Consumer<ImportProgress> progress) {
        return new ImportRequest(layout, name, Objects.requireNonNull(progress, "progress"));
    }

    /** The layout, absolute. */
    public Path layout() {
        return layout;
    }

    /** The normalized name given, or {@code null} to take the layout's. */
    public String name() {
        return name;
    }

    public Consumer<ImportProgress> progress() {
        return progress;
    }

    @Override
    public String toString() {
        return "ImportRequest[" + layout + (name == null ? "" : ", name=" + name) + "]";
    }
}

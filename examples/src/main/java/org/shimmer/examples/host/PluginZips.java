package org.shimmer.examples.host;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Comparator;
import java.util.List;
import java.util.Properties;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;

/**
 * Expands a plugin zip into the directory PF4J loads it from ({@code x.zip} into {@code x/}, beside it), so that no
 * process ever loads a half-written one.
 *
 * <p>PF4J expands in place: it deletes the directory and writes it entry by entry, and takes any directory newer
 * than its zip as complete. A host killed midway left a directory without the plugin's jar that every later start
 * loaded and failed on ("no plugin provides a RuntimePlugin") until removed by hand; two hosts starting at once
 * after the zip changed deleted each other's files. Here the zip is expanded into a hidden scratch directory
 * (PF4J skips hidden ones), stamped with the zip it came from, and renamed into place: the directory is whole or
 * absent. A directory whose stamp is not the zip's (another zip, a half-written one of old, or none) is expanded
 * again, also when the new zip is older, which PF4J's time rule ignored.
 */
final class PluginZips {

    /** Inside the expanded directory: the zip it came from. Hidden, where PF4J's class path never looks. */
    static final String STAMP = ".expanded-from";
    private static final String SCRATCH = ".expanding-";
    private static final String STALE = ".stale-";
    /** Enough for every host of a directory to have moved the directory aside once each. */
    private static final int INSTALL_ATTEMPTS = 16;

    private PluginZips() {}

    /** Whether {@code path} is a plugin zip, by PF4J's rule (a regular file ending in {@code .zip}, any case). */
    static boolean isZip(Path path) {
        return Files.isRegularFile(path) && path.getFileName().toString().toLowerCase().endsWith(".zip");
    }

    /** The directory {@code zip} expands into: its name without the extension, beside it. */
    static Path expandedDir(Path zip) {
        String name = zip.getFileName().toString();
        return zip.resolveSibling(name.substring(0, name.lastIndexOf('.')));
    }

    /**
     * Reads every entry of {@code zip} (each one's CRC checked) without writing anything; returns its
     * {@code plugin.properties}. Throws naming the zip when it is no zip, is cut short or has no descriptor.
     */
    static Properties verify(Path zip) throws IOException {
        Properties descriptor = null;
        int count = 0;
        try (ZipInputStream entries = new ZipInputStream(Files.newInputStream(zip))) {
            for (ZipEntry entry = entries.getNextEntry(); entry != null; entry = entries.getNextEntry(), count++) {
                if (entry.getName().equals("plugin.properties")) {
                    descriptor = new Properties();
                    descriptor.load(new ByteArrayInputStream(entries.readAllBytes()));
                } else {
                    entries.transferTo(OutputStream.nullOutputStream());
                }
            }
        } catch (IOException e) {
            throw new IOException("plugin zip " + zip + " cannot be read whole: " + e.getMessage(), e);
        }
        if (count == 0) {
            throw new IOException("plugin zip " + zip + " holds no entry: it is no zip");
        }
        if (descriptor == null) {
            throw new IOException("plugin zip " + zip + " holds no plugin.properties");
        }
        return descriptor;
    }

    /** Expands {@code zip} unless its directory is already its whole expansion; returns the directory. */
    static Path expand(Path zip) throws IOException {
        Path target = expandedDir(zip);
        String stamp = stampOf(zip);
        if (stamp.equals(stampIn(target))) {
            return target;
        }
        removeLeftoversOfDeadHosts(target);
        Path scratch = Files.createTempDirectory(zip.getParent(), scratchPrefix(target, ProcessHandle.current().pid()));
        try {
            unzip(zip, scratch);
            Files.writeString(scratch.resolve(STAMP), stamp, StandardCharsets.UTF_8);
            install(scratch, target, stamp);
        } finally {
            deleteTree(scratch);
        }
        return target;
    }

    /** Renames {@code scratch} to {@code target}, moving a stale {@code target} aside first. */
    private static void install(Path scratch, Path target, String stamp) throws IOException {
        for (int attempt = 0; attempt < INSTALL_ATTEMPTS; attempt++) {
            try {
                Files.move(scratch, target, StandardCopyOption.ATOMIC_MOVE);
                return;
            } catch (FileSystemException occupied) {
                // Someone's directory is there: the same expansion (another host was quicker), or a stale one.
            }
            if (stamp.equals(stampIn(target))) {
                return;
            }
            Path stale = target.resolveSibling(stalePrefix(target, ProcessHandle.current().pid()) + System.nanoTime());
            try {
                Files.move(target, stale, StandardCopyOption.ATOMIC_MOVE);
            } catch (NoSuchFileException movedByAnother) {
                continue;
            }
            deleteTree(stale);
        }
        throw new IOException("cannot put the expansion of " + target.getFileName() + ".zip in place at " + target
                + ": other hosts kept replacing it");
    }

    private static void unzip(Path zip, Path into) throws IOException {
        int count = 0;
        try (ZipInputStream entries = new ZipInputStream(Files.newInputStream(zip))) {
            for (ZipEntry entry = entries.getNextEntry(); entry != null; entry = entries.getNextEntry(), count++) {
                Path file = into.resolve(entry.getName()).normalize();
                if (!file.startsWith(into) || file.equals(into)) {
                    throw new IOException("plugin zip " + zip + " holds an entry outside its directory: "
                            + entry.getName());
                }
                if (entry.isDirectory()) {
                    Files.createDirectories(file);
                } else {
                    Files.createDirectories(file.getParent());
                    Files.copy(entries, file);
                }
            }
        }
        if (count == 0) {
            // ZipInputStream reads anything else as an empty zip: PF4J then loaded an empty directory.
            throw new IOException("plugin zip " + zip + " holds no entry: it is no zip");
        }
    }

    /** The zip's identity: a zip renamed into place is a new file, one rewritten in place a new size or time. */
    private static String stampOf(Path zip) throws IOException {
        BasicFileAttributes attributes = Files.readAttributes(zip, BasicFileAttributes.class);
        return attributes.fileKey() + " " + attributes.size() + " " + attributes.lastModifiedTime().toInstant();
    }

    private static String stampIn(Path dir) throws IOException {
        try {
            return Files.readString(dir.resolve(STAMP), StandardCharsets.UTF_8);
        } catch (NoSuchFileException | NotDirectoryException absent) {
            return null;
        }
    }

    /** Scratch and stale directories of hosts that died before removing them (SIGKILL). */
    private static void removeLeftoversOfDeadHosts(Path target) throws IOException {
        String name = target.getFileName().toString();
        try (DirectoryStream<Path> siblings = Files.newDirectoryStream(target.getParent(), "." + name + ".*")) {
            for (Path sibling : siblings) {
                String rest = sibling.getFileName().toString().substring(name.length() + 1);
                for (String kind : List.of(SCRATCH, STALE)) {
                    if (rest.startsWith(kind) && !alive(rest.substring(kind.length()))) {
                        deleteTree(sibling);
                    }
                }
            }
        }
    }

    /** Whether the pid that starts {@code pidThenRest} ({@code 1234-…}) is a live process. */
    private static boolean alive(String pidThenRest) {
        int dash = pidThenRest.indexOf('-');
        try {
            long pid = Long.parseLong(dash < 0 ? pidThenRest : pidThenRest.substring(0, dash));
            return ProcessHandle.of(pid).isPresent();
        } catch (NumberFormatException notOurs) {
            return true;
        }
    }

    static String scratchPrefix(Path target, long pid) {
        return "." + target.getFileName() + SCRATCH + pid + "-";
    }

    private static String stalePrefix(Path target, long pid) {
        return "." + target.getFileName() + STALE + pid + "-";
    }

    /** Deletes {@code dir} and everything under it, never following a link; an absent one is fine. */
    static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(path);
            }
        } catch (NoSuchFileException removedByAnother) {
            // Another host removed it first: so much the better.
        }
    }

    /** For tests: whether any scratch or stale directory of {@code zip}'s expansion is left beside it. */
    static boolean leftoversBeside(Path zip) throws IOException {
        String name = expandedDir(zip).getFileName().toString();
        try (DirectoryStream<Path> siblings = Files.newDirectoryStream(zip.getParent(), "." + name + ".*")) {
            return siblings.iterator().hasNext();
        }
    }
}

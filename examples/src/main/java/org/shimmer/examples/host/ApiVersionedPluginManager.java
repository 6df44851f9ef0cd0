package org.shimmer.examples.host;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.pf4j.BasePluginRepository;
import org.pf4j.CompoundPluginRepository;
import org.pf4j.DefaultPluginManager;
import org.pf4j.DevelopmentPluginRepository;
import org.pf4j.JarPluginRepository;
import org.pf4j.PluginDescriptor;
import org.pf4j.PluginRepository;
import org.pf4j.PropertiesPluginDescriptorFinder;
import org.pf4j.PluginRuntimeException;
import org.pf4j.PluginWrapper;
import org.pf4j.util.AndFileFilter;
import org.pf4j.util.DirectoryFileFilter;
import org.pf4j.util.HiddenFilter;
import org.pf4j.util.NotFileFilter;
import org.shimmer.runtime.RuntimePlugin;

/**
 * PF4J's {@link DefaultPluginManager} with the API's version as its system version, refusing what does not fit.
 *
 * <p>PF4J alone only logs a warning and leaves a plugin whose {@code plugin.requires} does not admit the system
 * version {@code DISABLED}, loaded, with its class loader; a host would just find no extension. Here loading such a
 * plugin unloads it at once and throws {@link IncompatiblePluginException} naming the plugin, what it requires and
 * the host's API version. Nothing of it is started. PF4J's own rule decides (jsemver expressions, {@code ^0.4.0}).
 *
 * <p>Zips are expanded by {@link PluginZips}, whole or not at all, never by PF4J in place: several hosts (CLI
 * commands) may start at once on one plugins directory, and any of them may be killed while it expands.
 */
public class ApiVersionedPluginManager extends DefaultPluginManager {

    private final Map<String, IncompatiblePluginException> refused = new ConcurrentHashMap<>();

    // setSystemVersion only stores the version; nothing reads it before loadPlugins().
    @SuppressWarnings("this-escape")
    public ApiVersionedPluginManager(Path pluginsDir) {
        super(pluginsDir);
        setSystemVersion(RuntimePlugin.API_VERSION);
    }

    /** PF4J's repositories, with its zip expansion replaced by {@link PluginZips}'. */
    @Override
    protected PluginRepository createPluginRepository() {
        return new CompoundPluginRepository()
                .add(new DevelopmentPluginRepository(getPluginsRoots()), this::isDevelopment)
                .add(new JarPluginRepository(getPluginsRoots()), this::isNotDevelopment)
                .add(new ExpandedZipRepository(getPluginsRoots()), this::isNotDevelopment);
    }

    /** A zip given by path (a reload) is expanded as the directory's are; a broken one fails naming it. */
    @Override
    protected PluginWrapper loadPluginFromPath(Path pluginPath) {
        if (!PluginZips.isZip(pluginPath)) {
            return super.loadPluginFromPath(pluginPath);
        }
        try {
            return super.loadPluginFromPath(PluginZips.expand(pluginPath));
        } catch (IOException e) {
            throw new PluginRuntimeException(e, "cannot expand plugin zip {}: {}", pluginPath, e.getMessage());
        }
    }

    /**
     * Checks, loading nothing, that the plugin zip at {@code zip} is whole and built for this API; returns its
     * descriptor. Throws {@link PluginRuntimeException} naming the zip, or {@link IncompatiblePluginException}.
     */
    public PluginDescriptor admit(Path zip) {
        PluginDescriptor descriptor;
        try {
            descriptor = new DescriptorReader().read(PluginZips.verify(zip));
        } catch (IOException e) {
            throw new PluginRuntimeException(e, "{}", e.getMessage());
        }
        if (!super.isPluginValid(new PluginWrapper(this, descriptor, zip, getClass().getClassLoader()))) {
            throw new IncompatiblePluginException(descriptor.getPluginId(), descriptor.getVersion(),
                    descriptor.getRequires(), getSystemVersion());
        }
        return descriptor;
    }

    @Override
    protected boolean isPluginValid(PluginWrapper plugin) {
        if (super.isPluginValid(plugin)) {
            return true;
        }
        PluginDescriptor descriptor = plugin.getDescriptor();
        refused.put(descriptor.getPluginId(), new IncompatiblePluginException(descriptor.getPluginId(),
                descriptor.getVersion(), descriptor.getRequires(), getSystemVersion()));
        return false;
    }

    /** Loads every plugin of the directory; throws, having unloaded them, if some were built for another API. */
    @Override
    public void loadPlugins() {
        super.loadPlugins();
        unloadRefused();
    }

    /** Loads one plugin; throws, having unloaded it, if it was built for another API. */
    @Override
    public String loadPlugin(Path pluginPath) {
        String id = super.loadPlugin(pluginPath);
        unloadRefused();
        return id;
    }

    private void unloadRefused() {
        List<IncompatiblePluginException> found = new ArrayList<>(refused.values());
        refused.clear();
        if (found.isEmpty()) {
            return;
        }
        for (IncompatiblePluginException refusal : found) {
            unloadPlugin(refusal.pluginId());
        }
        IncompatiblePluginException first = found.getFirst();
        found.stream().skip(1).forEach(first::addSuppressed);
        throw first;
    }

    /** PF4J's directory repository (plugin directories, hidden ones skipped) over zips expanded atomically. */
    private static final class ExpandedZipRepository extends BasePluginRepository {

        ExpandedZipRepository(List<Path> roots) {
            super(roots, new AndFileFilter(new DirectoryFileFilter(), new NotFileFilter(new HiddenFilter())));
        }

        @Override
        public List<Path> getPluginPaths() {
            for (Path root : pluginsRoots) {
                try (Stream<Path> files = Files.list(root)) {
                    for (Path zip : files.filter(PluginZips::isZip).sorted().toList()) {
                        PluginZips.expand(zip);
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot expand the plugin zips of " + root + ": "
                            + e.getMessage(), e);
                }
            }
            return super.getPluginPaths();
        }

        @Override
        public boolean deletePluginPath(Path pluginPath) {
            for (String extension : List.of(".zip", ".ZIP", ".Zip")) {
                try {
                    Files.deleteIfExists(pluginPath.resolveSibling(pluginPath.getFileName() + extension));
                } catch (IOException ignored) {
                    // As PF4J's: the zip goes if it can; the directory's removal decides.
                }
            }
            return super.deletePluginPath(pluginPath);
        }
    }

    /** PF4J's reading of {@code plugin.properties}, from properties already read out of the zip. */
    private static final class DescriptorReader extends PropertiesPluginDescriptorFinder {

        PluginDescriptor read(Properties properties) {
            return createPluginDescriptor(properties);
        }
    }
}

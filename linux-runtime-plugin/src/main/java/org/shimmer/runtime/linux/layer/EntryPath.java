package org.shimmer.runtime.linux.layer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.function.Consumer;

/**
 * A tar entry's name as the components of a path inside its layer: no empty or {@code .} component, never
 * {@code ..}; no components at all is the layer's root ({@code ./}).
 *
 * <p>Invariant: a parsed path names something inside the layer by its text alone; the unpacker makes sure no
 * component on disk is a symlink. Names are refused rather than cleaned: an absolute name or a {@code ..} segment
 * has no meaning in a layer but to escape it, and a "cleaned" {@code a/../../x} would hide that.
 */
record EntryPath(List<String> components) {

    /**
     * Linux's limits on a name and on a path: an entry beyond them failed with an I/O error that looked retryable
     * (it never succeeds), and unbounded paths made unpacking cost the square or cube of their depth.
     */
    static final int NAME_MAX = 255;
    static final int PATH_MAX = 4096;

    /** The path {@code name} stands for; {@code what} says whose name it is in a refusal ("name", "link target"). */
    static EntryPath parse(String name, String what) throws Refusal {
        if (name.isEmpty()) {
            throw new Refusal(what + " is empty");
        }
        if (name.indexOf('\0') >= 0) {
            throw new Refusal(what + " contains a NUL byte");
        }
        // commons-compress decodes names as UTF-8 and replaces bytes that are not: the file on disk would get
        // another name than the one in the layer.
        if (name.indexOf('\uFFFD') >= 0) {
            throw new Refusal(what + " is not valid UTF-8");
        }
        if (name.startsWith("/")) {
            throw new Refusal(what + " is absolute");
        }
        List<String> components = new ArrayList<>();
        long length = -1;
        for (String component : name.split("/")) {
            if (component.equals("..")) {
                throw new Refusal(what + " has a \"..\" segment");
            }
            if (!component.isEmpty() && !component.equals(".")) {
                int bytes = bytes(component).length;
                if (bytes > NAME_MAX) {
                    throw new Refusal(what + " has a component of " + bytes + " bytes, more than the "
                            + NAME_MAX + " a file name can have");
                }
                length += 1 + bytes;
                if (length > PATH_MAX) {
                    throw new Refusal(what + " is longer than the " + PATH_MAX + " bytes a path can have");
                }
                components.add(component);
            }
        }
        return new EntryPath(List.copyOf(components));
    }

    boolean isRoot() {
        return components.isEmpty();
    }

    /** The last component's bytes, as the file is named on disk. */
    byte[] base() {
        return bytes(components.getLast());
    }

    String baseName() {
        return components.getLast();
    }

    /** The components of the directory holding this path. */
    List<String> parent() {
        return components.subList(0, components.size() - 1);
    }

    /** The path of {@code name} in the same directory. */
    EntryPath sibling(String name) {
        List<String> sibling = new ArrayList<>(parent());
        sibling.add(name);
        return new EntryPath(List.copyOf(sibling));
    }

    /**
     * Component by component, a path before the paths below it: everything below a path (and the path itself) is
     * one run in this order, so a removed directory's entries are found without looking at any other.
     */
    static final Comparator<EntryPath> TREE_ORDER = (a, b) -> {
        int shared = Math.min(a.components.size(), b.components.size());
        for (int i = 0; i < shared; i++) {
            int order = a.components.get(i).compareTo(b.components.get(i));
            if (order != 0) {
                return order;
            }
        }
        return Integer.compare(a.components.size(), b.components.size());
    };

    /** Removes {@code path} and every path below it from {@code sorted} (in {@link #TREE_ORDER}). */
    static <V> void removeTree(NavigableMap<EntryPath, V> sorted, EntryPath path, Consumer<V> removed) {
        for (Iterator<Map.Entry<EntryPath, V>> below = sorted.tailMap(path, true).entrySet().iterator();
                below.hasNext(); ) {
            Map.Entry<EntryPath, V> entry = below.next();
            if (!path.contains(entry.getKey())) {
                return;
            }
            removed.accept(entry.getValue());
            below.remove();
        }
    }

    /** Whether {@code other} is this path or below it. */
    boolean contains(EntryPath other) {
        return other.components.size() >= components.size()
                && other.components.subList(0, components.size()).equals(components);
    }

    static byte[] bytes(String component) {
        return component.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public String toString() {
        return isRoot() ? "." : String.join("/", components);
    }
}

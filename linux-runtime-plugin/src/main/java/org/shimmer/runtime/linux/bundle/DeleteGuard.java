package org.shimmer.runtime.linux.bundle;

import org.shimmer.runtime.Bundle;

/**
 * Asked by {@link BundleStore#delete} before anything is renamed or removed: throws when the bundle must not be
 * deleted now (its shim or container still lives). Blocking; called on the io scheduler.
 */
@FunctionalInterface
public interface DeleteGuard {

    /** A guard for stores that run no containers. */
    DeleteGuard NONE = bundle -> {};

    void requireUnused(Bundle bundle);
}

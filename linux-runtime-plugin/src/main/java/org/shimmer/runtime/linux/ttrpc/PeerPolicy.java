package org.shimmer.runtime.linux.ttrpc;

import jdk.net.UnixDomainPrincipal;
import java.nio.file.attribute.UserPrincipal;
import java.util.Objects;

/**
 * Which peers a {@link TtrpcServer} serves, judged by the credentials the kernel reports for the connecting
 * process ({@code SO_PEERCRED}), not by anything the peer says.
 */
@FunctionalInterface
public interface PeerPolicy {

    /** Whether to serve a peer with these credentials. */
    boolean admits(UnixDomainPrincipal peer);

    /** Serves only processes running as {@code user}: the server's own user, as containerd's shims require. */
    static PeerPolicy sameUser(UserPrincipal user) {
        Objects.requireNonNull(user, "user");
        return peer -> user.equals(peer.user());
    }
}

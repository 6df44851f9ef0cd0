package org.shimmer.runtime.linux.shim.remote;

import com.google.protobuf.Any;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;
import org.shimmer.runtime.Bundle;
import org.shimmer.runtime.ErrorCode;
import org.shimmer.runtime.FailedPreconditionException;
import org.shimmer.runtime.NotFoundException;
import org.shimmer.runtime.RuncOptions;
import org.shimmer.runtime.RuntimeConfig;
import org.shimmer.runtime.UnavailableException;
import org.shimmer.runtime.events.Envelope;
import org.shimmer.runtime.events.EventExchange;
import org.shimmer.runtime.events.EventFilter;
import org.shimmer.runtime.events.task.TaskEvent;
import org.shimmer.runtime.linux.bundle.ShimStarts;
import org.shimmer.runtime.linux.cleanup.Launches;
import org.shimmer.runtime.linux.poll.FifoPoller;
import org.shimmer.runtime.linux.resources.RuntimeResources;
import org.shimmer.runtime.linux.shim.Operations;
import org.shimmer.runtime.linux.shim.TaskErrors;
import org.shimmer.runtime.linux.shim.proto.ConnectRequest;
import org.shimmer.runtime.linux.shim.proto.ConnectResponse;
import org.shimmer.runtime.linux.shim.proto.Options;
import org.shimmer.runtime.linux.sys.LinuxCalls;
import org.shimmer.runtime.linux.sys.OwnedFd;
import org.shimmer.runtime.linux.ttrpc.CallOptions;
import org.shimmer.runtime.linux.ttrpc.TtrpcClient;
import org.shimmer.runtime.linux.ttrpc.TtrpcConnection;
import org.shimmer.runtime.shim.ShimClient;
import org.shimmer.runtime.shim.ShimException;
import org.shimmer.runtime.shim.ShimOpt;
import org.shimmer.runtime.shim.TaskState;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;

/**
 * Starts {@code containerd-shim-runc-v2} processes for bundles, or reattaches to running ones, as containerd's
 * runtime v2 does.
 */
public final class RemoteShims {

    /** How long dialing a shim may take; a dead socket answers at once, so this only bounds a stuck one. */
    static final Duration DIAL_TIMEOUT = Duration.ofSeconds(2);

    /**
     * How long a dialed shim may take to answer Connect: calls have no deadline unless given one, and a shim that
     * runs but never answers must end up "does not answer", not hang its caller (containerd bounds it too).
     */
    static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);

    private static final Logger log = LoggerFactory.getLogger(RemoteShims.class);
    private static final int SIGKILL = 9;
    /** How long a forced delete waits for the exit of a task it killed through its shim before killing the rest. */
    private static final Duration END_TIMEOUT = Duration.ofSeconds(10);
    private static final Logger shimLog = LoggerFactory.getLogger("org.shimmer.runtime.linux.shim.remote.ShimLog");

    private final RuntimeConfig config;
    private final RuntimeResources resources;
    private final EventExchange exchange;
    private final RemoteShimRegistry registry;
    private final TaskClaims claims;

    /** Remote shims of {@code config}'s state root, publishing into {@code exchange}. */
    public RemoteShims(RuntimeConfig config, RuntimeResources resources, RemoteShimRegistry registry,
            EventExchange exchange) {
        this.config = config;
        this.resources = resources;
        this.exchange = exchange;
        this.registry = registry;
        this.claims = registry.claims;
    }

    /**
     * Every shim event of the state root from subscription on: binds the events server if nothing has yet. The
     * exchange subscription is made at once, beside the bind: made after it, a host that subscribed and then killed
     * a local shim's container missed its exit (a first bind took 200 ms here). Prefetch 1, so envelopes wait in
     * the subscription's backlog, under its overflow policy, until the subscriber asks for them.
     */
    public Flux<Envelope> events() {
        Mono<Envelope> bound = ShimEventsServer.forStateRoot(config.stateRoot(), resources, registry, exchange)
                .onErrorMap(ShimEventsServer::servedElsewhere, error -> new ShimException(ErrorCode.UNAVAILABLE,
                        "another process already receives the shim events of " + config.stateRoot(), error))
                // A first bind racing a plugin stop finds the loops closed: the runtime stopped, as for any call.
                .onErrorMap(TaskErrors::rejected, stopped -> new UnavailableException("events of "
                        + config.stateRoot() + ": " + stopped.getMessage(), stopped))
                .then(Mono.empty());
        return resources.failedAtStop(Flux.merge(1, bound, exchange.subscribe(EventFilter.all())), exchange,
                "events of " + config.stateRoot());
    }

    /**
     * The exchange local shims of this state root publish into: {@code exchange}, and the events server of another
     * process when one serves the state root's socket (see {@link EventForwarder}).
     */
    public EventExchange forwardingLocalEvents(EventExchange exchange) {
        return new ForwardingExchange(exchange,
                registry.forwarder(ShimEventsServer.socket(config.stateRoot()), resources));
    }

    /**
     * Starts a shim process for the bundle, after {@code first} (the launch record). The start runs to its end
     * whoever cancels: cut between {@code shim start} and Connect, it left a daemon nobody knew of, and the bundle
     * could not be deleted; a client nobody took is let go (see {@link #abandoned}). Nothing of ours stands between
     * the run-to-end and the caller that could drop the client: a {@code then} there (for the record; Reactor's
     * {@code MonoIgnoreThen} discards a value that completes after a cancel) could throw away a client that arrived
     * just as its caller cancelled, after it counted as taken, and its shim ran on with nobody to shut it down. The
     * record is written once the start is kept apart from deletes: a start cancelled while it wrote the record goes
     * on, and a delete and re-create of the bundle meanwhile must not have a second start share its directory.
     */
    public Mono<ShimClient> start(Bundle bundle, ShimOpt.Remote opt, RuncOptions options, Mono<Void> first) {
        // Kept apart from a delete of the bundle until it ends, not until its caller stops waiting (ShimStarts).
        Mono<ShimClient> apartFromDeletes = Mono.defer(() -> {
            if (!ShimStarts.begin(bundle.path())) {
                return Mono.error(new FailedPreconditionException("start the shim of task " + bundle.namespace()
                        + "/" + bundle.id() + ": the bundle is being deleted"));
            }
            // Ended before the caller hears of the result (a delete on failure must not be refused), and once.
            AtomicBoolean ended = new AtomicBoolean();
            Runnable end = () -> {
                if (ended.compareAndSet(false, true)) {
                    ShimStarts.end(bundle.path());
                }
            };
            return first.then(Mono.defer(() -> launchAndConnect(bundle, opt,
                            options != null ? options : RuncOptions.defaults())))
                    .doOnTerminate(end)
                    .doOnCancel(end);
        });
        return Operations.runToEnd(apartFromDeletes, client -> abandoned(bundle, client,
                "was started for a caller that went away"));
    }

    /**
     * A started client nobody took: its shim is shut down (task-less, its daemon exits and is reaped), unless
     * another client of this runtime reaches it or it runs a task. {@code shim start} hands out the address of a
     * shim already running for the bundle: shutting that one down removed its record while it ran its task (the
     * shim ignores a shutdown then), so {@code connect()} could no longer reach the container.
     */
    private Mono<Void> abandoned(Bundle bundle, ShimClient client, String why) {
        String task = bundle.namespace() + "/" + bundle.id();
        if (claims.attachedTo(bundle.path()).size() > 1) {
            log.info("the shim of task {} {}; another client holds it: detaching", task, why);
            return client.close();
        }
        return client.state()
                .map(state -> false)
                // Not known to be task-less (the shim does not answer): only detached.
                .onErrorResume(error -> Mono.just(error instanceof NotFoundException))
                .flatMap(taskless -> {
                    log.info("the shim of task {} {}: {}", task, why, taskless
                            ? "shutting it down (it has no task)" : "detaching (it has a task, or did not say)");
                    return taskless ? client.shutdown() : client.close();
                });
    }

    /**
     * Ends, for a forced delete, the task of the bundle at {@code bundleDir} through a client of this runtime
     * attached to its live shim, as containerd ends a task (SIGKILL to all, its exit awaited, delete, shutdown): a
     * caller waiting for its exit learns 137 and its exit and delete events go out, as on the local shim (the
     * remote Wait said "detached", and no delete event came). Then detaches every client still attached: the
     * forced delete kills the shim, and none of them must take that for a death to clean up after. Each answers
     * later calls "not found". Whatever fails here falls through to the forced delete's kill.
     */
    public Mono<Void> endAttached(Path bundleDir) {
        return Mono.defer(() -> {
            List<RemoteShimClient> attached = claims.attachedTo(bundleDir);
            attached.forEach(client -> client.session().forceDeleted());
            Mono<Void> throughShim = attached.isEmpty() ? Mono.empty()
                    : endThroughShim(attached.getFirst(), bundleDir);
            return throughShim.then(Flux.defer(() -> Flux.fromIterable(claims.attachedTo(bundleDir)))
                    .flatMap(RemoteShimClient::close)
                    .then());
        });
    }

    private Mono<Void> endThroughShim(RemoteShimClient client, Path bundleDir) {
        return client.kill(SIGKILL, true).onErrorResume(notRunning -> Mono.empty())
                .then(client.awaitExit().timeout(END_TIMEOUT, resources.io()))
                .then(client.delete())
                .then(client.shutdown())
                .onErrorResume(error -> {
                    log.debug("the shim of bundle {} did not end its task ({}); forcing it", bundleDir,
                            error.toString());
                    return Mono.empty();
                });
    }

    /**
     * Reattaches to the bundle's running shim; run to its end whoever cancels, as a start is, and a client nobody
     * took detaches (the shim and its task run on).
     */
    public Mono<ShimClient> connect(Bundle bundle, ShimOpt.Connect opt, RuncOptions options) {
        return Operations.runToEnd(reattach(bundle, opt, options != null ? options : RuncOptions.defaults()),
                ShimClient::close);
    }

    private Mono<ShimClient> launchAndConnect(Bundle bundle, ShimOpt.Remote opt, RuncOptions runc) {
        Any options = runcOptions(bundle, runc, opt.cgroup());
        return ShimEventsServer.address(config.stateRoot(), resources, registry, exchange)
                .flatMap(events -> launch(bundle, opt, options, events))
                .flatMap(launched -> {
                    RemoteShimClient client = new RemoteShimClient(bundle, launched.command(), launched.socket(),
                            resources, exchange, runc, options, opt.exitHandler(), claims, InitExits.of(exchange));
                    // `start` hands out the address of a shim already running for the bundle: one that does not
                    // answer may hold a live container, so only a shim whose process is gone is cleaned up.
                    String name = bundle.namespace() + "/" + bundle.id();
                    return recorded(bundle, launched, connect(bundle, client, launched.socket(), launched.log())
                            // Another bundle's shim (the address it handed out is that shim's): nothing of it
                            // is touched, and our record, which names its socket, goes.
                            .onErrorResume(ForeignShimException.class, foreign -> Mono.fromCallable(() -> {
                                        launched.log().discard();
                                        ShimRecord.remove(bundle.workDir());
                                        return true;
                                    })
                                    .subscribeOn(resources.io())
                                    .then(Mono.<ShimClient>error(foreign)))
                            .onErrorResume(error -> !(error instanceof ForeignShimException),
                                    error -> Mono.fromCallable(() -> {
                                        launched.log().discard();
                                        return ShimProcess.alive(bundle);
                                    })
                                    .subscribeOn(resources.io())
                                    .flatMap(alive -> alive
                                            ? Mono.error(new UnavailableException("the shim for " + name
                                                    + " runs but cannot be reached; nothing was touched: "
                                                    + error.getMessage(), error))
                                            : Mono.defer(() -> {
                                                client.session().foundDead(ShimRecord.stamp(bundle.workDir()));
                                                return client.session().cleanUpDeadShim();
                                            }).then(Mono.error(new ShimException(
                                                    ErrorCode.UNAVAILABLE, "the shim for " + name
                                                    + " started but cannot be reached: " + error.getMessage(),
                                                    error))))));
                });
    }

    /**
     * {@code connected}, unless the shim's record could not be written (a full work root): then the shim is let go
     * as one nobody took ({@link #abandoned}: shut down when it has no task) and the start fails with the write's
     * error. The daemon of such a failed start used to run on, found by nobody but a forced delete.
     */
    private Mono<ShimClient> recorded(Bundle bundle, Launched launched, Mono<ShimClient> connected) {
        if (launched.unrecorded() == null) {
            return connected;
        }
        return connected
                .flatMap(client -> abandoned(bundle, client, "could not be recorded ("
                        + launched.unrecorded().getMessage() + ")")
                        .onErrorResume(error -> {
                            launched.unrecorded().addSuppressed(error);
                            return Mono.empty();
                        })
                        .then(Mono.<ShimClient>error(new UncheckedIOException(launched.unrecorded()))));
    }

    /** A started shim; {@code unrecorded} is why its record could not be written, null when it was. */
    private record Launched(ShimCommand command, Path socket, FifoPoller.FifoStream log, IOException unrecorded) {}

    /** A shim's record and which write of it was read ({@link ShimRecord#stamp}). */
    private record StampedRecord(ShimRecord record, Object stamp) {}

    /** Runs {@code <shim> start}. On failure or cancel nothing it made is left. */
    private Mono<Launched> launch(Bundle bundle, ShimOpt.Remote opt, Any options, Path eventsSocket) {
        String name = bundle.namespace() + "/" + bundle.id();
        ShimCommand command = new ShimCommand(opt.shimBinary().toString(), bundle.namespace(), bundle.id(),
                opt.daemonAddress(), opt.debug(), bundle.path());
        return Mono.usingWhen(
                Mono.fromCallable(() -> openLog(bundle)).subscribeOn(resources.io()),
                logStream -> command.start(options.toByteArray(), eventsSocket, bundle.workDir(), resources.io())
                        // On io already: the command's output was read there.
                        .map(result -> {
                            String address = new String(result.stdout(), StandardCharsets.UTF_8).strip();
                            if (result.exitCode() != 0) {
                                throw new ShimException("shim " + opt.shimBinary() + " failed to start for " + name
                                        + ": exit " + result.exitCode()
                                        + (result.stderr().isEmpty() ? "" : ": " + result.stderr()));
                            }
                            if (!address.startsWith("unix://")) {
                                throw new ShimException("shim " + opt.shimBinary() + " for " + name
                                        + " exited without printing its address" + (address.isEmpty() ? ""
                                        : " (printed: " + address + ")"));
                            }
                            Path socket = Path.of(address.substring("unix://".length()));
                            IOException unrecorded = null;
                            try {
                                new ShimRecord(opt.shimBinary().toString(), opt.daemonAddress(), opt.debug(),
                                        socket.toString()).write(bundle.workDir());
                            } catch (IOException e) {
                                // The shim runs: connected to, then let go (see recorded).
                                unrecorded = e;
                            }
                            return new Launched(command, socket, logStream, unrecorded);
                        }),
                logStream -> Mono.empty(),
                (logStream, error) -> dropLog(bundle, logStream),
                logStream -> dropLog(bundle, logStream));
    }

    private Mono<Void> dropLog(Bundle bundle, FifoPoller.FifoStream logStream) {
        return Mono.<Void>fromCallable(() -> {
            logStream.discard();
            Files.deleteIfExists(bundle.path().resolve("log"));
            return null;
        }).subscribeOn(resources.io());
    }

    /**
     * The shim writes its log to {@code log} in the bundle, opened write-only without creating it: it must exist,
     * and be read, or the shim dies silently (missing) or blocks (unread FIFO). A FIFO read by the poll thread
     * passes each line to our logger.
     */
    private FifoPoller.FifoStream openLog(Bundle bundle) throws IOException {
        Path log = bundle.path().resolve("log");
        if (!Files.exists(log)) {
            LinuxCalls.mkfifo(log, 0600);
        }
        FifoPoller.FifoStream stream = resources.poller().open(log);
        String name = bundle.namespace() + "/" + bundle.id();
        stream.content()
                .map(bytes -> new String(bytes, StandardCharsets.UTF_8))
                .concatMapIterable(text -> text.lines().toList())
                .subscribe(line -> shimLog.info("shim {}: {}", name, line), error -> {});
        return stream;
    }

    private Mono<ShimClient> connect(Bundle bundle, RemoteShimClient client, Path socket,
            FifoPoller.FifoStream logStream) {
        return TtrpcClient.create()
                .socket(socket)
                .runOn(resources.loops())
                .connectTimeout(DIAL_TIMEOUT)
                .doOnClose(client.session()::onConnectionClosed)
                .connect()
                .doOnNext(connection -> closeOnStop(resources, connection))
                .flatMap(connection -> hello(connection, client)
                        .flatMap(connected -> Mono.usingWhen(
                                        openPidfd(connected.getShimPid()),
                                        // The pid came over this connection, but only an answer after the pidfd
                                        // was opened proves it names the shim and not a process that reused its
                                        // pid; only then is it watched (and, once gone, reaped if adopted).
                                        pidfd -> hello(connection, client)
                                                .then(requireOwnShim(bundle, socket, connected.getShimPid()))
                                                .then(watchShim(connected.getShimPid(), pidfd)),
                                        pidfd -> Mono.empty(),
                                        (pidfd, error) -> Mono.fromRunnable(pidfd::close),
                                        pidfd -> Mono.fromRunnable(pidfd::close))
                                .map(gone -> {
                                    client.session().attach(connection, connected.getShimPid(), logStream, gone);
                                    return (ShimClient) client;
                                }))
                        .doOnError(error -> connection.dispose()));
    }

    /**
     * Closes {@code connection} when the runtime stops, before its event loops stop. A loop stopped with no quiet
     * period that is running tasks as the stop arrives ends without closing its channels (Netty looks for the stop
     * only before it runs them): the connection stayed open, and its calls in flight never ended, a Wait among
     * them, so an {@code exit()} waiting for it never did either.
     */
    static void closeOnStop(RuntimeResources resources, TtrpcConnection connection) {
        resources.track(connection);
        connection.onClose().subscribe(done -> {}, error -> {}, () -> resources.untrack(connection));
    }

    /**
     * Fails with {@link ForeignShimException} unless shim {@code pid} (held by a pidfd, so still that process) is
     * the daemon of {@code bundle}. The socket came from {@code shim start}, which hands out the address of a shim
     * already serving it (the same namespace, id and daemon address in another state root: the other runtime's
     * shim), or from a record that may be stale or altered: a client attached to another bundle's shim sent its
     * Create there, its events went to the other runtime, and its shutdown ended the other runtime's shim.
     */
    private Mono<Void> requireOwnShim(Bundle bundle, Path socket, int pid) {
        return Mono.<Void>fromRunnable(() -> {
            if (!ShimProcess.isDaemon(pid, bundle)) {
                throw new ForeignShimException("the shim socket " + socket + " of task " + bundle.namespace() + "/"
                        + bundle.id() + " is served by process " + pid + ", not by the shim of bundle "
                        + bundle.path() + " (another state root's shim of the same namespace, id and daemon"
                        + " address, or a stale record); nothing was touched: give each state root a daemon"
                        + " address of its own");
            }
        }).subscribeOn(resources.io());
    }

    /** The shim that answers on a bundle's socket belongs to another bundle. */
    static final class ForeignShimException extends FailedPreconditionException {
        ForeignShimException(String message) {
            super(message);
        }
    }

    private Mono<OwnedFd> openPidfd(int pid) {
        return Mono.fromCallable(() -> OwnedFd.pidfd(pid)).subscribeOn(resources.io());
    }

    private static Mono<ConnectResponse> hello(TtrpcConnection connection, RemoteShimClient client) {
        return connection.call(ShimSession.TASK, "Connect",
                ConnectRequest.newBuilder().setId(client.id()).build(), ConnectResponse.parser(),
                // A live but loaded shim may take a while to answer; only dialing is kept short.
                CallOptions.defaults().withNamespace(client.namespace()).withTimeout(CONNECT_TIMEOUT));
    }

    /** Watches the shim process through a pidfd: completes when it is gone (reaped, if the JVM adopted it). */
    private Mono<Mono<Void>> watchShim(int pid, OwnedFd pidfd) {
        return Mono.fromCallable(() -> resources.exitMonitor().watchAny(pid, pidfd)).subscribeOn(resources.io());
    }

    /**
     * Reattaches to the shim recorded in the bundle: reconciles first (an exit nobody heard is published now), so
     * events flow again from a known state. A shim whose process is gone is cleaned up at once; one that lives but
     * does not answer is left alone ({@link UnavailableException}).
     */
    private Mono<ShimClient> reattach(Bundle bundle, ShimOpt.Connect opt, RuncOptions runc) {
        String name = bundle.namespace() + "/" + bundle.id();
        Any options = runcOptions(bundle, runc, null);
        return ShimEventsServer.address(config.stateRoot(), resources, registry, exchange)
                .then(Mono.fromCallable(() -> {
                            // Which record this is, read before it: a cleanup of this shim never answers for the
                            // next one of the bundle, whose record reads the same.
                            Object stamp = ShimRecord.stamp(bundle.workDir());
                            ShimRecord read = ShimRecord.read(bundle.workDir()).orElseThrow(
                                    () -> new NotFoundException("no shim is recorded for bundle " + name));
                            return new StampedRecord(read, stamp);
                        })
                        .subscribeOn(resources.io()))
                .flatMap(stamped -> {
                    ShimRecord record = stamped.record();
                    ShimCommand command = new ShimCommand(record.binary(), bundle.namespace(), bundle.id(),
                            record.daemonAddress(), record.debug(), bundle.path());
                    Path socket = Path.of(record.socket());
                    RemoteShimClient client = new RemoteShimClient(bundle, command, socket, resources, exchange,
                            runc, options, opt.exitHandler(), claims, InitExits.of(exchange));
                    return Mono.fromCallable(() -> openLog(bundle)).subscribeOn(resources.io())
                            .flatMap(logStream -> connect(bundle, client, socket, logStream)
                                    .onErrorResume(ForeignShimException.class, foreign -> Mono
                                            .fromRunnable(logStream::discard)
                                            .subscribeOn(resources.io())
                                            .then(Mono.<ShimClient>error(foreign)))
                                    .onErrorResume(error -> !(error instanceof ForeignShimException),
                                            error -> Mono.fromCallable(() -> ShimProcess.alive(bundle))
                                            .subscribeOn(resources.io())
                                            .flatMap(alive -> {
                                                logStream.discard();
                                                if (alive) {
                                                    return Mono.error(new UnavailableException("the shim for "
                                                            + name + " runs but does not answer ("
                                                            + error.getMessage() + ")", error));
                                                }
                                                // Its process is gone: clean up as if we had seen it die,
                                                // reporting the exit of the task it had, if it had one still.
                                                // A shim that deleted its task and then exited leaves its
                                                // record (a shutdown whose caller gave up before the record
                                                // was removed) but no runc container: reporting an exit and
                                                // a delete then told subscribers of a second end.
                                                client.session().foundDead(stamped.stamp());
                                                int initPid = readInitPid(bundle);
                                                if (Launches.runcHasContainer(bundle, runc)) {
                                                    client.session().trackInit(initPid, false);
                                                } else {
                                                    client.session().initWithoutTask(initPid);
                                                }
                                                return client.session().cleanUpDeadShim().then(Mono.error(new ShimException(
                                                        ErrorCode.UNAVAILABLE, "the shim for " + name
                                                        + " is not running (" + error.getMessage()
                                                        + "); its task was cleaned up",
                                                        error)));
                                            })))
                            // A reconcile that failed (the exchange refused its exit) lets its client go: left
                            // attached, told the exit went in, it made the next connect() take it for heard.
                            .flatMap(connected -> reconcile(bundle, (RemoteShimClient) connected)
                                    .onErrorResume(failed -> connected.close()
                                            .onErrorResume(closing -> {
                                                failed.addSuppressed(closing);
                                                return Mono.empty();
                                            })
                                            .then(Mono.error(failed))));
                });
    }

    private Mono<ShimClient> reconcile(Bundle bundle, RemoteShimClient client) {
        return client.state()
                .flatMap(state -> {
                    boolean exited = state.status() == TaskState.Status.STOPPED;
                    // Another client of this runtime heard it in this exchange: a second connect() to a stopped
                    // task told every subscriber of the container that it exited once more.
                    boolean heard = exited && claims.attachedTo(bundle.path()).stream()
                            .anyMatch(other -> other.session().initExitSeenIn(exchange, state.pid()));
                    client.session().trackInit(state.pid(), heard);
                    if (!exited || heard) {
                        return Mono.just((ShimClient) client);
                    }
                    log.info("task {}/{} exited while nobody listened; reporting its exit", client.namespace(),
                            client.id());
                    InitExits.of(exchange).publishing(exchange, client.namespace(), client.id(), state.pid());
                    return exchange.publish(client.namespace(), "/tasks/exit", new TaskEvent.TaskExit(client.id(),
                                    client.id(), state.pid(), state.exitStatus(),
                                    state.exitedAt().orElseGet(Instant::now)))
                            .thenReturn((ShimClient) client);
                })
                .onErrorResume(NotFoundException.class, noTask -> Mono.just(client));
    }

    private static int readInitPid(Bundle bundle) {
        try {
            return Integer.parseInt(Files.readString(bundle.path().resolve("init.pid")).strip());
        } catch (IOException | NumberFormatException absent) {
            return 0;
        }
    }

    /**
     * The runc options the shim gets on {@code start}'s stdin and with Create. The shim keeps runc's state per
     * namespace under the root it is given ({@code <root>/<namespace>}): our runtime root, not containerd's.
     */
    private static Any runcOptions(Bundle bundle, RuncOptions runc, String cgroup) {
        Options.Builder options = Options.newBuilder()
                .setBinaryName(runc.effectiveBinaryName())
                .setRoot(Objects.requireNonNull(runc.runtimeRoot(), "runtime root not resolved"))
                .setSystemdCgroup(runc.systemdCgroup());
        runc.criu().ifPresent(options::setCriuPath);
        if (cgroup != null && !cgroup.isBlank()) {
            options.setShimCgroup(cgroup);
        }
        return Any.newBuilder().setTypeUrl("containerd.runc.v1.Options").setValue(options.build().toByteString())
                .build();
    }
}

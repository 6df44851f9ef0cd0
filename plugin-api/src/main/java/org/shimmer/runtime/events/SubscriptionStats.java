package org.shimmer.runtime.events;

/**
 * What one live subscription of an {@link InMemoryEventExchange} looks like at a moment: what it asked for and how
 * many envelopes it lost to its {@link OverflowPolicy}.
 *
 * @param filter the filter it subscribed with
 * @param backlog the backlog it subscribed with
 * @param dropped envelopes that passed its filter but were dropped because its backlog was full
 */
public record SubscriptionStats(EventFilter filter, Backlog backlog, long dropped) {}

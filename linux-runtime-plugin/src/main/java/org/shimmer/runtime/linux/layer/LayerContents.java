package org.shimmer.runtime.linux.layer;

/**
 * What one unpacked layer holds.
 *
 * @param bytes the sum of its regular files' sizes (hard links not counted again)
 * @param entries how many tar entries it had, whiteouts and directories included
 */
public record LayerContents(long bytes, long entries) {}

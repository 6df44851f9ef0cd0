package org.shimmer.runtime.linux.layer;

/**
 * What one unpacked layer holds.
 *
 * @param bytes the sum of the sizes of the regular files it holds at its end (a file replaced or removed within
 *     the layer is not counted, hard links are not counted again)
 * @param entries how many tar entries it had, whiteouts and directories included
 */
public record LayerContents(long bytes, long entries) {}

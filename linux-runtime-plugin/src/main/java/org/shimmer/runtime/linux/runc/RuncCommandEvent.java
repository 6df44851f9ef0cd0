package org.shimmer.runtime.linux.runc;

import jdk.jfr.Category;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.Label;
import jdk.jfr.Name;
import jdk.jfr.StackTrace;

/**
 * A JFR event around each runc command and each step of runc's done in the JVM instead, so that a recording tells
 * the time spent in runc from Shimmer's own (issue 14's breakdown) without any API: a benchmark or an operator
 * reads it by name from a recording.
 */
@Name("org.shimmer.RuncCommand")
@Label("runc command")
@Category({"Shimmer", "runc"})
@Description("One runc command, or runc's start or delete done in the JVM")
@StackTrace(false)
public final class RuncCommandEvent extends Event {

    @Label("Command")
    @Description("runc's command word: create, start, delete, ...")
    String command;

    @Label("In JVM")
    @Description("Done in the JVM instead of by a runc process")
    boolean inJvm;

    @Label("Container")
    String container;

    RuncCommandEvent(String command, boolean inJvm, String container) {
        this.command = command;
        this.inJvm = inJvm;
        this.container = container;
    }
}

package org.shimmer.runtime.linux.runc;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** What {@code runc --version} prints, read: pure logic, the layouts it admits are tested with real runc. */
class RuncVersionTest {

    @Test
    void readsTheVersionLineOfDebiansAndUpstreamsRunc() {
        assertThat(RuncVersion.parse("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\n"))
                .contains(new RuncVersion(1, 1));
        assertThat(RuncVersion.parse("runc version 1.2.0-rc.1\ncommit: v1.2.0-rc.1-0-g275e6d85\n"))
                .contains(new RuncVersion(1, 2));
    }

    @Test
    void somethingElseIsNoVersion() {
        assertThat(RuncVersion.parse("crun version 1.8.1\n")).isEmpty();
        assertThat(RuncVersion.parse("")).isEmpty();
        assertThat(RuncVersion.parse("runc version unknown\n")).isEmpty();
    }
}

# common.tcl --
#
#	Sourced by every tests/*.test file: loads tcltest and the fresh build
#	of spps, gives the file its own SPPS_HOME (so no test ever touches a
#	user's state), and defines helpers shared across files.

package require Tcl 8.6
package require tcltest 2.5
namespace import -force ::tcltest::*

# Refuse to test an installed copy: make test sets SPPS_BUILD_DIR.
package require spps
if {[info exists ::env(SPPS_BUILD_DIR)]
        && [string first $::env(SPPS_BUILD_DIR) [package ifneeded spps [package present spps]]] < 0} {
    error "tests must load the build in $::env(SPPS_BUILD_DIR), not\
           [package ifneeded spps [package present spps]]"
}

# A private SPPS_HOME per test file, removed at exit.
# (tcltest runs each file as "tclsh file.test": argv0 names it.)
if {![info exists ::sppsTestHome]} {
    set ::sppsTestHome [file join [temporaryDirectory] \
        home-[file rootname [file tail $::argv0]]-[pid]]
    file delete -force $::sppsTestHome
    file mkdir $::sppsTestHome
    set ::env(SPPS_HOME) $::sppsTestHome
    # Remove it when the file's tests are done.
    rename ::tcltest::cleanupTests ::tcltest::SppsFileCleanupTests
    proc ::tcltest::cleanupTests {args} {
        cd [file dirname $::sppsTestHome]
        file delete -force $::sppsTestHome
        uplevel 1 [list ::tcltest::SppsFileCleanupTests {*}$args]
    }
    # The imported name still points at the renamed command: import anew.
    namespace import -force ::tcltest::cleanupTests
}

# testdir NAME -- a fresh empty directory under the test file's home.
proc testdir {name} {
    set d [file join $::sppsTestHome $name]
    file delete -force $d
    file mkdir $d
    return $d
}

# hex BYTES -- binary to lower-case hex; unhex HEX -- the reverse.
proc hex {bytes} {binary encode hex $bytes}
proc unhex {text} {binary decode hex [string map {" " "" "\n" ""} $text]}

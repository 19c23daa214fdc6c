# all.tcl --
#
#	Runs the whole spps test suite: the C unit-test binaries named by
#	-units, then every tests/*.test file through tcltest (each in its own
#	tclsh).  Ends with one line "N passed, N failed" over both, and exits
#	non-zero if anything failed.
#
#	    tclsh tests/all.tcl ?-units "tests/c/test_a tests/c/test_b"? ?tcltest options?
#
#	make test runs it with TCLLIBPATH pointing at the fresh build.

package require Tcl 8.6
package require tcltest 2.5

set units {}
if {[set i [lsearch -exact $argv -units]] >= 0} {
    set units [lindex $argv [expr {$i + 1}]]
    set argv [lreplace $argv $i [expr {$i + 1}]]
}

set passed 0
set failed 0

# C unit tests: each prints "unit: NAME: Total N Passed P Failed F".
foreach unit $units {
    puts "[file tail $unit]"
    flush stdout
    set status [catch {exec -ignorestderr -- [file normalize $unit] 2>@ stderr} output opts]
    puts $output
    if {[regexp -line {^unit: [^:]+: Total (\d+) Passed (\d+) Failed (\d+)$} $output \
            -> total p f]} {
        incr passed $p
        incr failed $f
        if {$status && $f == 0} {
            puts "$unit exited with an error after its summary"
            incr failed
        }
    } else {
        puts "$unit did not finish: [dict get $opts -errorcode]"
        incr failed
    }
}

# tcltest files.  cleanupTests resets its counters once it has printed the
# totals, so keep a copy of them first.
rename ::tcltest::cleanupTests ::tcltest::SppsCleanupTests
proc ::tcltest::cleanupTests {{calledFromAllFile 0}} {
    if {$calledFromAllFile} {
        array set ::tclTotals [array get ::tcltest::numTests]
    }
    uplevel 1 [list ::tcltest::SppsCleanupTests $calledFromAllFile]
}
::tcltest::configure -testdir [file dirname [file normalize [info script]]] \
    -tmpdir [file join [pwd] tests-tmp] {*}$argv
file mkdir [::tcltest::temporaryDirectory]
set tclStatus [::tcltest::runAllTests]
incr passed $::tclTotals(Passed)
incr failed $::tclTotals(Failed)
if {$tclStatus && $::tclTotals(Failed) == 0} {
    # A test file that errored out or crashed counts once.
    incr failed
}

puts "$passed passed, $failed failed"
exit [expr {$failed > 0}]

# demo.tcl --
#
#	The whole SPPS flow of Microchip's tutorial TU0823, played by the jobmgr
#	and FPExpress programs on software HSMs and a simulated bench, in a
#	fresh workspace: an OE folder and a CM folder, each side with its own
#	SPPS_HOME, sharing only the simulated vendor and the files sent.
#	Prints every step's tool log (figures 27 to 30 are the job status
#	steps), then a summary counted from the logs.  Exits 1 if any step
#	did not behave as the tutorial says.
#
#	    tclsh examples/demo.tcl ?-build DIR? ?-workspace DIR?
#
#	-build DIR      the build directory with jobmgr and FPExpress (default:
#	                $SPPS_BUILD_DIR, else the installed programs on PATH)
#	-workspace DIR  where to play (must not exist or be empty; default: a
#	                new directory under $TMPDIR or /tmp).  It is kept.
#
#	make demo builds spps and runs this with -build set.

package require Tcl 8.6

source [file join [file dirname [file normalize [info script]]] tutorial_flow.tcl]

proc usage {} {
    puts stderr "usage: tclsh [file tail [info script]] ?-build DIR?\
	    ?-workspace DIR?"
    exit 2
}

# Options.
set build ""
set workspace ""
foreach {opt value} $argv {
    switch -- $opt {
	-build     {set build $value}
	-workspace {set workspace $value}
	default    {usage}
    }
}
if {[llength $argv] % 2} {
    usage
}
if {$workspace eq ""} {
    set tmp [expr {[info exists env(TMPDIR)] ? $env(TMPDIR) : "/tmp"}]
    if {$tcl_platform(platform) eq "windows" && [info exists env(TEMP)]} {
	set tmp $env(TEMP)
    }
    set n 0
    while {[file exists [set workspace [file join $tmp spps-demo-[pid]-$n]]]} {
	incr n
    }
}

# Report --
#	Prints each step as it is played: a heading, the command line as the
#	user would type it in that side's folder, the tool log as the tool
#	prints it (indented), and what was expected if it went otherwise.
proc Report {event rec} {
    set side [dict get $rec side]
    if {$event eq "start"} {
	if {[dict get $rec kind] eq "send"} {
	    puts "== $side -> [dict get $rec to]: send [dict get $rec file]"
	} else {
	    set scripts [lmap w [lrange [dict get $rec command] 1 end] {
		if {![string match SCRIPT:* $w]} continue
		string range $w 7 end
	    }]
	    set figure [expr {[dict get $rec figure] eq "" ? ""
		: ", figure [dict get $rec figure]"}]
	    puts "== $side: [dict get $rec heading] ([join $scripts {, }])$figure"
	    puts "$side\$ [Quote [dict get $rec command]]"
	}
	flush stdout
	return
    }
    if {[dict get $rec kind] eq "tool"} {
	foreach line [split [dict get $rec out] \n] {
	    puts [string trimright "    $line"]
	}
	if {[dict get $rec status] != 0} {
	    puts "    (exit status [dict get $rec status][expr {
		[dict get $rec status] == [dict get $rec expect]
		    ? ", as expected" : ""}])"
	}
    }
    if {[dict get $rec problem] ne ""} {
	if {[dict get $rec kind] eq "tool" && [dict get $rec err] ne ""} {
	    puts "    stderr:"
	    foreach line [split [dict get $rec err] \n] {
		puts "    $line"
	    }
	}
	puts "!! UNEXPECTED: [dict get $rec problem]"
    }
    puts ""
    flush stdout
}

# Quote words -- a command line as a shell user types it.
proc Quote {words} {
    join [lmap w $words {
	expr {[regexp {[ "'$]} $w] ? "\"$w\"" : $w}
    }] " "
}

try {
    tutorial::launchers $build
    tutorial::workspace $workspace
} on error msg {
    puts stderr "demo: $msg"
    exit 1
}
puts "SPPS tutorial flow (TU0823) with jobmgr and FPExpress"
puts "workspace $workspace"
puts "  OE/, CM/            the Operations Engineer's and the Contract\
      Manufacturer's folders"
puts "  OE-home/, CM-home/  their SPPS_HOMEs: the U-HSM; the M-HSM and the\
      programmer bench"
puts "  vendor/             SPPS_FACTORY: the simulated vendor, whom both trust"
puts ""

set t0 [clock milliseconds]
set ok [tutorial::flow Report]
set seconds [format %.1f [expr {([clock milliseconds] - $t0) / 1000.0}]]

set s [tutorial::summary]
puts "== Summary[expr {$ok ? "" : " (the flow stopped early)"}]"
puts "devices programmed:      [dict get $s programmed][expr {
    [dict get $s authorised] eq "?" ? ""
	: " (the job authorised [dict get $s authorised])"}]"
puts "codes refused by M-HSM:  [dict get $s refused]"
lassign [dict get $s cocs] v n
puts "CoCs valid:              $v of $n"
lassign [dict get $s certifiers] v n
puts "end certifiers valid:    $v of $n"
puts "steps played:            [llength [tutorial::records]] in $seconds s"
puts "workspace:               [dict get $s workspace]"
if {!$ok} {
    set last [lindex [tutorial::records] end]
    puts "FAILED at step '[dict get $last heading]': [dict get $last problem]"
    exit 1
}
puts "The flow behaved as the tutorial says."
exit 0

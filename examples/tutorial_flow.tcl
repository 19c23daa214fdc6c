# tutorial_flow.tcl --
#
#	The SPPS flow of Microchip's tutorial TU0823, played end to end by
#	the jobmgr and FPExpress programs, each run a separate process, as an
#	Operations Engineer (OE) and a Contract Manufacturer (CM) would run
#	them: the tutorial's scripts unchanged, in an OE folder and a CM
#	folder of a fresh workspace, files copied between the folders as they
#	would be sent, boards handled through spps::sim in FPExpress scripts.
#
#	Sourced by examples/demo.tcl (which prints the flow) and by
#	tests/tutorial.test (which asserts it).  Plain Tcl 8.6: it needs only
#	the two programs, not the spps package.
#
#	    tutorial::launchers ?BUILDDIR?   finds jobmgr and FPExpress
#	    tutorial::workspace DIR          makes DIR/OE, DIR/CM and the homes
#	    tutorial::flow ?REPORT?          plays the flow; 1 if every step
#	                                     behaved as expected, else 0
#	    tutorial::step ID ?KEY?          the record of a step
#	    tutorial::summary                what happened, counted
#
#	Every step leaves a record (a dict): id, kind (tool or send), side,
#	heading, command, and for a tool run status, out (the tool log on
#	stdout), err (stderr); problem is non-empty if the step did not do
#	what the tutorial says.  REPORT, if given, is called as
#	{*}REPORT event record, event being "start" or "done".

namespace eval ::tutorial {
    variable here [file dirname [file normalize [info script]]]
    variable exe		;# dict: jobmgr / FPExpress -> program path
    variable ws			;# dict: root, OE, CM, OE-home, CM-home, vendor
    variable records {}		;# the steps played, in order
    variable report {}		;# the REPORT callback of flow

    # The tickets of the tutorial's HSM task, as the status logs list them.
    variable tickets {MyTicket1 PROGRAM MyTicket2 VERIFY MyTicket3 ERASE}

    # The CM operator's hands, which plug boards in (not a script in the
    # tutorial), written into the CM folder next to the CM scripts.  The
    # RUN button is examples/scripts/Scripts_For_CM/
    # FlashProExpress_Run_Actions.tcl.
    variable cmScripts {
	Demo_Connect_Board.tcl {
# Demo_Connect_Board.tcl -- the CM operator takes the board off the
# programmer, if there is one, and connects another: a new blank
# SmartFusion2 M2S090 board, or with SCRIPT_ARGS:DSN that device's board.
foreach prg [lrange [spps::sim::programmer list] 0 0] {
    set old [dict get [spps::sim::programmer info $prg] dsn]
    if {$old ne ""} {
        spps::sim::board pull $prg
        spps::log write "Board disconnected from programmer '$prg': device DSN $old"
    }
}
if {$argc > 0} {
    set dsn [spps::sim::board insert -dsn [lindex $argv 0]]
} else {
    set dsn [spps::sim::board insert -die M2S090]
}
set board [spps::sim::board info $dsn]
spps::log write "Board connected to programmer '[dict get $board programmer]':\
    [dict get $board family] [dict get $board die], device DSN $dsn,\
    [dict get $board state]"
}
    }
}

# ------------------------------------------------------------------------
# Set-up
# ------------------------------------------------------------------------

# tutorial::launchers ?buildDir? --
#	Finds the two programs: in buildDir if given, else in
#	$SPPS_BUILD_DIR, else on PATH (an installed spps).  Returns the dict.
proc ::tutorial::launchers {{buildDir ""}} {
    variable exe
    if {$buildDir eq "" && [info exists ::env(SPPS_BUILD_DIR)]} {
	set buildDir $::env(SPPS_BUILD_DIR)
    }
    set exe {}
    foreach prog {jobmgr FPExpress} {
	if {$buildDir ne ""} {
	    set path [file join [file normalize $buildDir] $prog]
	    if {$::tcl_platform(platform) eq "windows"} {
		append path .exe
	    }
	    if {![file executable $path]} {
		error "no program $prog in the build directory $buildDir\
		       (run make first)"
	    }
	} else {
	    set path [lindex [auto_execok $prog] 0]
	    if {$path eq ""} {
		error "no program $prog on PATH: give -build DIR or install spps"
	    }
	}
	dict set exe $prog $path
    }
    return $exe
}

# tutorial::workspace root --
#	A fresh workspace, standing for two machines and the vendor:
#	  root/OE       the OE's folder: the OE scripts, the design's JDC
#	  root/CM       the CM's folder: the CM scripts
#	  root/OE-home  SPPS_HOME of the OE's machine: U-HSM, Job Manager
#	                settings
#	  root/CM-home  SPPS_HOME of the CM's machine: M-HSM, FlashPro Express
#	                settings, the bench (programmer, boards)
#	  root/vendor   SPPS_FACTORY, the simulated Microchip factory: the
#	                vendor root both sides trust, the devices' makers
#	Nothing else is shared: what one side needs of the other comes as a
#	file sent.  root must not exist or be empty.
proc ::tutorial::workspace {root} {
    variable here
    variable ws
    variable cmScripts
    variable records {}

    set root [file normalize $root]
    if {[file exists $root] && [llength [glob -nocomplain -directory $root *]]} {
	error "workspace $root exists and is not empty"
    }
    set ws [dict create root $root]
    foreach d {OE CM OE-home CM-home vendor} {
	dict set ws $d [file join $root $d]
	file mkdir [dict get $ws $d]
    }
    set scripts [file join $here scripts]
    foreach f [glob -directory [file join $scripts Scripts_For_OE] *.tcl] {
	file copy $f [dict get $ws OE]
    }
    file copy [file join $scripts hello_world_sb.jdc] [dict get $ws OE]
    foreach f [glob -directory [file join $scripts Scripts_For_CM] *.tcl] {
	file copy $f [dict get $ws CM]
    }
    foreach {name text} $cmScripts {
	set f [open [file join [dict get $ws CM] $name] w]
	puts -nonewline $f [string trimleft $text \n]
	close $f
    }
    return $ws
}

# ------------------------------------------------------------------------
# Steps
# ------------------------------------------------------------------------

# tutorial::Record rec --
#	Appends a finished step and reports it.
proc ::tutorial::Record {rec} {
    variable records
    variable report
    lappend records $rec
    if {[llength $report]} {
	{*}$report done $rec
    }
    return $rec
}

# tutorial::Tool id side heading scripts ?-args WORDS? ?-expect STATUS?
#		?-figure N? --
#	Runs jobmgr (side OE) or FPExpress (side CM) in that side's folder
#	with SCRIPT:script for each script, and SCRIPT_ARGS:WORDS if given.
#	Records the exit status, stdout and stderr; a status other than
#	-expect (default 0) is a problem.  -figure: the tutorial's figure
#	showing this log.
proc ::tutorial::Tool {id side heading scripts args} {
    variable exe
    variable ws
    variable report
    set o [dict merge {-args "" -expect 0 -figure ""} $args]
    set prog [expr {$side eq "OE" ? "jobmgr" : "FPExpress"}]
    set words {}
    foreach s $scripts {
	lappend words SCRIPT:$s
    }
    if {[dict get $o -args] ne ""} {
	lappend words "SCRIPT_ARGS:[dict get $o -args]"
    }
    set rec [dict create id $id kind tool side $side heading $heading \
	    command [list $prog {*}$words] expect [dict get $o -expect] \
	    figure [dict get $o -figure] problem ""]
    if {[llength $report]} {
	{*}$report start $rec
    }

    set errFile [file join [dict get $ws root] stderr.txt]
    set savedEnv {}
    foreach {name value} [list SPPS_HOME [dict get $ws $side-home] \
	    SPPS_FACTORY [dict get $ws vendor]] {
	if {[info exists ::env($name)]} {
	    dict set savedEnv $name $::env($name)
	}
	set ::env($name) $value
    }
    set savedDir [pwd]
    cd [dict get $ws $side]
    try {
	set status 0
	set out ""
	if {[catch {open |[list [dict get $exe $prog] {*}$words 2> $errFile] r} chan]} {
	    set status "not run: $chan"
	} else {
	    set out [string trimright [read $chan] \n]
	    if {[catch {close $chan} msg opts]} {
		set code [dict get $opts -errorcode]
		switch -- [lindex $code 0] {
		    CHILDSTATUS {set status [lindex $code 2]}
		    CHILDKILLED {set status "killed by [lindex $code 2]"}
		    default     {set status "failed: $msg"}
		}
	    }
	}
    } finally {
	cd $savedDir
	foreach name {SPPS_HOME SPPS_FACTORY} {
	    if {[dict exists $savedEnv $name]} {
		set ::env($name) [dict get $savedEnv $name]
	    } else {
		unset -nocomplain ::env($name)
	    }
	}
    }
    set err ""
    if {[file exists $errFile]} {
	set f [open $errFile]
	set err [string trimright [read $f] \n]
	close $f
	file delete $errFile
    }
    dict set rec status $status
    dict set rec out $out
    dict set rec err $err
    if {$status ne [dict get $o -expect]} {
	dict set rec problem "exit status $status, expected [dict get $o -expect]"
    }
    return $rec
}

# tutorial::Send id from to file --
#	The file travels from one side's folder to the other's (mail, FTP,
#	a USB stick: the tutorial leaves the transport to OE and CM).
proc ::tutorial::Send {id from to file} {
    variable ws
    variable report
    set rec [dict create id $id kind send side $from to $to file $file \
	    heading "$from sends $file to $to" figure "" \
	    command [list copy $from/$file $to/] problem ""]
    if {[llength $report]} {
	{*}$report start $rec
    }
    set src [file join [dict get $ws $from] $file]
    if {![file isfile $src]} {
	dict set rec problem "$from has no file $file to send"
    } else {
	file copy -force $src [dict get $ws $to]
    }
    return $rec
}

# tutorial::Expect recVar problem condition --
#	Marks a problem on the record unless condition (an expression, evaluated in
#	the caller) holds; a record with a problem already keeps the first.
proc ::tutorial::Expect {recVar problem cond} {
    upvar 1 $recVar rec
    if {[dict get $rec problem] eq "" && ![uplevel 1 [list expr $cond]]} {
	dict set rec problem $problem
    }
}

# ------------------------------------------------------------------------
# Reading the tool logs
# ------------------------------------------------------------------------

# tutorial::tickets text --
#	The tickets of a status log, in order: a list of
#	{name action codesLeft} (the "Ticket Name", "Action" and "Number of
#	authorization codes left" lines of figures 27-30 and 33).
proc ::tutorial::tickets {text} {
    set r {}
    set name ""
    set action ""
    foreach line [split $text \n] {
	if {[regexp {^Ticket Name: (.*)$} $line -> name]} {
	    set action ""
	} elseif {[regexp {^Action: (.*)$} $line -> action]} {
	} elseif {[regexp {^Number of authorization codes left: (\d+)$} $line -> n]} {
	    lappend r [list $name $action $n]
	}
    }
    return $r
}

# tutorial::left text -- the codes left per ticket: {2 2 2}.
proc ::tutorial::left {text} {
    lmap t [tickets $text] {lindex $t 2}
}

# tutorial::verdicts text kind --
#	The verdicts of a Job Manager status log, one per line checked:
#	kind coc ("CoC N: ...: valid") or certifier ("Ticket '...' (...):
#	TERMINATED ...: valid").  A list of valid / INVALID.
proc ::tutorial::verdicts {text kind} {
    set re [dict get {
	coc       {^CoC \d+: .*: (valid|INVALID)$}
	certifier {^Ticket '[^']*' \(.*\): .*: (valid|INVALID)$}
    } $kind]
    set r {}
    foreach line [split $text \n] {
	if {[regexp $re $line -> v]} {
	    lappend r $v
	}
    }
    return $r
}

# tutorial::refusals text --
#	The authorization codes the M-HSM refused in a FlashPro Express log
#	(the device's line "programmer 'P' : Error: ... no authorization code
#	left").
proc ::tutorial::refusals {text} {
    regexp -all -line \
	{^programmer '[^']*' : Error: .*has no authorization code left} $text
}

# tutorial::passed text action -- the actions that passed in a log.
proc ::tutorial::passed {text action} {
    regexp -all -line \
	"^programmer '\[^'\]*' : Executing action $action PASSED\\.\$" $text
}

# tutorial::dsn text -- the device DSN a Demo_Connect_Board run connected.
proc ::tutorial::dsn {text} {
    if {![regexp -line {^Board connected to .*device DSN ([0-9a-f]+),} $text \
	    -> d]} {
	return ""
    }
    return $d
}

# ------------------------------------------------------------------------
# The flow
# ------------------------------------------------------------------------

# tutorial::Status id heading figure expected --
#	The CM's FlashProExpress_Export_Job_Status.tcl: the codes left must
#	be those expected (those of the figure).
proc ::tutorial::Status {id heading figure expected} {
    variable tickets
    set rec [Tool $id CM $heading FlashProExpress_Export_Job_Status.tcl \
	    -figure $figure]
    set want {}
    foreach {name action} $tickets n $expected {
	lappend want [list $name $action $n]
    }
    set got [tickets [dict get $rec out]]
    Expect rec "codes left [left [dict get $rec out]], expected $expected" {
	$got eq $want
    }
    return $rec
}

# tutorial::flow ?report? --
#	Plays the whole flow in the workspace.  Stops at the first step that
#	does not behave as the tutorial says.  Returns 1 if all did, else 0.
proc ::tutorial::flow {{reportCmd ""}} {
    variable report $reportCmd
    variable records {}
    variable ws
    try {
	Play
    } trap {TUTORIAL STOP} {} {
	return 0
    } finally {
	file delete [file join [dict get $ws root] stderr.txt]
    }
    return 1
}

# tutorial::Step script --
#	Runs one step (a call returning a record), records it, and stops the
#	flow if it has a problem.
proc ::tutorial::Step {args} {
    set rec [uplevel 1 $args]
    Record $rec
    if {[dict get $rec problem] ne ""} {
	return -code error -errorcode {TUTORIAL STOP} [dict get $rec problem]
    }
    return $rec
}

proc ::tutorial::Play {} {
    variable ws

    # Set-up: each side configures its HSM (step 8 of the tutorial; step 9
    # is the KeySet directory the OE makes by hand).
    file mkdir [file join [dict get $ws OE] KeySet]
    Step Tool oe-params OE "set the U-HSM parameters" \
	JobManager_Set_HSM_Parameters.tcl
    Step Tool cm-params CM "set the M-HSM parameters" \
	FlashProExpress_Set_HSM_Parameters.tcl

    # The OE's keyset, project, programming data, bitstream, job, HSM task
    # with its tickets, and the job request: three scripts, one session.
    set rec [Tool oe-request OE "create the keyset, project, bitstream, job,\
	    HSM task and job request" {JobManager_Create_Project.tcl
	    JobManager_Create_HSM_Task.tcl JobManager_Create_HSM_Job_Request.tcl}]
    Expect rec "three scripts did not all succeed" {
	[regexp -all {The Execute Script command succeeded.} [dict get $rec out]] == 3
    }
    Step set rec
    Step Send send-request OE CM MyProgJobRequest.req

    Step Tool cm-reply CM "process the job request" \
	FlashProExpress_Process_Job_Request.tcl
    Step Send send-reply CM OE MyProgJobReply.rep

    Step Tool oe-reply OE "import the job reply" JobManager_Import_Job_Reply.tcl
    Step Tool oe-export OE "export the HSM task as a job file" \
	JobManager_Export_HSM_Task.tcl
    Step Send send-job OE CM MyProgJob.job

    # Production.
    set rec [Tool cm-board1 CM "connect board 1 to the programmer" \
	    Demo_Connect_Board.tcl]
    Expect rec "no board connected" {[dsn [dict get $rec out]] ne ""}
    Step set rec
    Step Tool cm-project CM "create the job project, loading the tickets\
	    into the M-HSM" FlashProExpress_Create_Job_Project.tcl
    Step Status cm-status27 "job status before PROGRAM" 27 {2 2 2}

    Step Tool cm-program1 CM "PROGRAM board 1" FlashProExpress_Run_Actions.tcl \
	-args PROGRAM
    Step Status cm-status28 "job status after PROGRAM" 28 {1 2 2}

    set rec [Tool cm-board2 CM "connect a new board, board 2" \
	    Demo_Connect_Board.tcl]
    set board2 [dsn [dict get $rec out]]
    Expect rec "no board connected" {$board2 ne ""}
    Step set rec
    Step Tool cm-program2 CM "PROGRAM board 2" FlashProExpress_Run_Actions.tcl \
	-args PROGRAM
    Step Status cm-status29 "job status after PROGRAM on the new board" 29 \
	{0 2 2}

    # Overbuild protection: two devices were authorised, not three.
    set rec [Tool cm-board3 CM "connect a third board" Demo_Connect_Board.tcl]
    Expect rec "no board connected" {[dsn [dict get $rec out]] ne ""}
    Step set rec
    set rec [Tool cm-program3 CM "PROGRAM board 3, which the M-HSM must\
	    refuse: overbuild protection" FlashProExpress_Run_Actions.tcl \
	    -args PROGRAM -expect 1]
    Expect rec "no refusal of an authorization code by the M-HSM" {
	[refusals [dict get $rec out]] == 1
	&& [passed [dict get $rec out] PROGRAM] == 0
    }
    Step set rec
    Step Status cm-status-refused "job status after the refusal: unchanged"\
	"" {0 2 2}

    Step Tool cm-board2-again CM "connect board 2 again" \
	Demo_Connect_Board.tcl -args $board2
    set rec [Tool cm-verify-erase CM "VERIFY and ERASE board 2" \
	    FlashProExpress_Run_Actions.tcl -args {VERIFY ERASE}]
    Expect rec "VERIFY and ERASE did not both pass" {
	[passed [dict get $rec out] VERIFY] == 1
	&& [passed [dict get $rec out] ERASE] == 1
    }
    Step set rec
    Step Status cm-status30 "job status after VERIFY and ERASE" 30 {0 1 1}
    Step Send send-status CM OE MyJobStatus

    set rec [Tool oe-status OE "check the intermediate job status" \
	    JobManager_Check_Job_Status.tcl -figure 33]
    set out [dict get $rec out]
    Expect rec "codes left [left $out], expected 0 1 1" {[left $out] eq {0 1 1}}
    Expect rec "CoCs [verdicts $out coc], expected 4 valid" {
	[verdicts $out coc] eq {valid valid valid valid}
    }
    Step set rec

    # End of the job: the CM terminates it, the OE validates the proofs.
    Step Tool cm-complete CM "terminate the job" \
	FlashProExpress_Complete_Job.tcl -figure 35
    Step Send send-end CM OE MyJobStatusEnd
    set rec [Tool oe-end OE "validate the job end status" \
	    JobManager_Check_Job_End_Status.tcl -figure 38]
    set out [dict get $rec out]
    Expect rec "CoCs [verdicts $out coc], expected 4 valid" {
	[verdicts $out coc] eq {valid valid valid valid}
    }
    Expect rec "end certifiers [verdicts $out certifier], expected 3 valid" {
	[verdicts $out certifier] eq {valid valid valid}
    }
    Step set rec
}

# ------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------

# tutorial::step id ?key? -- a step's record, or one of its fields.
proc ::tutorial::step {id {key ""}} {
    variable records
    foreach rec $records {
	if {[dict get $rec id] eq $id} {
	    return [expr {$key eq "" ? $rec : [dict get $rec $key]}]
	}
    }
    error "no step $id was played"
}

# tutorial::records -- every step played, in order.
proc ::tutorial::records {} {
    variable records
    return $records
}

# tutorial::summary --
#	What happened, counted from the logs: devices programmed (PROGRAM
#	actions passed), devices authorised (the PROGRAM ticket's maximum in
#	the end status), codes refused by the M-HSM, the end status's CoC
#	and end-certifier verdicts ({valid total}), the workspace.
proc ::tutorial::summary {} {
    variable records
    variable ws
    set programmed 0
    set authorised ?
    set refused 0
    set cocs {}
    set certifiers {}
    foreach rec $records {
	if {[dict get $rec kind] ne "tool"} {
	    continue
	}
	set out [dict get $rec out]
	if {[dict get $rec side] eq "CM"} {
	    incr programmed [passed $out PROGRAM]
	    incr refused [refusals $out]
	}
	if {[dict get $rec id] eq "oe-end"} {
	    set cocs [verdicts $out coc]
	    set certifiers [verdicts $out certifier]
	    regexp -line {^Ticket '[^']*' \(ID [0-9a-f]+, PROGRAM\): .*, max (\d+),} \
		$out -> authorised
	}
    }
    set count {{list} {
	list [llength [lsearch -all -exact $list valid]] [llength $list]
    }}
    dict create programmed $programmed authorised $authorised refused $refused \
	cocs [apply $count $cocs] certifiers [apply $count $certifiers] \
	workspace [dict get $ws root]
}

# fpexpress_helpers.tcl --
#
#	Sourced by the tests/fpexpress*.test files, after common.tcl: a
#	FlashPro Express session and a Job Manager session, each in a child
#	interpreter of its own (the two command sets share names), and the
#	tutorial's OE side as procedures that make a job request and a job.

# newCm / newOe -- fresh child interpreters with the CM or OE commands,
# their logs kept (not echoed).
proc newCm {} {
    if {[info exists ::cmInterp] && [interp exists $::cmInterp]} {
        interp delete $::cmInterp
    }
    set ::cmInterp [interp create]
    $::cmInterp eval [list set auto_path $::auto_path]
    $::cmInterp eval {
        package require fpexpress
        spps::log configure -echo ""
    }
    return $::cmInterp
}
proc newOe {} {
    if {[info exists ::oeInterp] && [interp exists $::oeInterp]} {
        interp delete $::oeInterp
    }
    set ::oeInterp [interp create]
    $::oeInterp eval [list set auto_path $::auto_path]
    $::oeInterp eval {
        package require jobmgr
        spps::log configure -echo ""
    }
    return $::oeInterp
}
proc cm {args} {$::cmInterp eval $args}
proc oe {args} {$::oeInterp eval $args}
proc cmLog {} {$::cmInterp eval {spps::log lines}}
proc cmClearLog {} {$::cmInterp eval {spps::log clear}}

# cmErr script -- the errorCode of a CM command (or "ok").
proc cmErr {args} {
    if {[catch {$::cmInterp eval $args} msg opts]} {
        return [dict get $opts -errorcode]
    }
    return ok
}
# cmCatch script -- {code message ?errorCode?}.
proc cmCatch {args} {
    set rc [catch {$::cmInterp eval $args} msg opts]
    if {$rc} {
        return [list $rc $msg [dict get $opts -errorcode]]
    }
    return [list $rc $msg]
}

# The HSMs of the tests: the OE's U-HSM and two CM M-HSMs (A and B).
set ::oeServer OEHSM
set ::mA {CMHSMA 0x10}
set ::mB {CMHSMB 0x11}

# cmParams server uuid -- the CM's HSM parameters.
proc cmParams {server uuid} {
    cm set_hsm_params -hsm_server_name $server -m_hsm_uuid $uuid \
        -hsm_type_u FALSE
}

# makeJdc file die -- a small design for die.
proc makeJdc {file {die M2S090TS}} {
    spps::jdc create -file $file -family [dieFamily $die] -die $die \
        -design_name hello_world_sb -fabric_size 1024 \
        -envm_client {MyClient1 256} -security {user_key_mode project}
}
proc dieFamily {die} {
    switch -glob -- $die {
        M2S* {return SmartFusion2}
        M2GL* {return IGLOO2}
        MPFS* {return {PolarFire SoC}}
        MPF* {return PolarFire}
    }
}

# oeJob name ?options? -- in the current directory, the OE side up to the
# job request: a project with a job $name whose task has the tickets
# given (a list of {ticket action max}); the request is $name.req.
# Options: -mhsm UUID (the M-HSM the request names), -die DIE,
# -keymode MODE, -tickets {...}, -internal 0|1, -keyset {options of
# create_keyset besides -file}.
proc oeJob {name args} {
    array set o {-mhsm 0x10 -die M2S090TS -keymode KFPE -internal 0
        -tickets {{T1 PROGRAM 2} {T2 VERIFY 2} {T3 ERASE 2}} -keyset {}}
    array set o $args
    file mkdir KeySet
    newOe
    oe set_hsm_params -hsm_server_name $::oeServer -u_hsm_uuid 1 \
        -u_master_hsm_uuid 30 -m_hsm_uuid $o(-mhsm) -hsm_keyset_dir ./KeySet
    if {![file exists $name.jdc]} {
        makeJdc $name.jdc $o(-die)
    }
    oe create_keyset -file $name.keys {*}$o(-keyset)
    oe new_project -location ./ -name P$name
    oe new_prog_data -data_name D -import_file ./$name.jdc -keyset_file $name.keys
    oe init_bitstream -data_name D -bitstream_name B -bitstream_type MASTER \
        -features SECURITY -use_protocol AUTH_CODE -generate_coc \
        -auth_keymode $o(-keymode)
    oe new_prog_job -job_name $name -job_type FPExpress
    oe add_microsemi_prog_device -job_name $name -device_name MyDevice \
        -device_hw_location 1 -data_name D -bitstream_name B
    if {$o(-internal)} {
        oe add_hsmtask_to_job -job_name $name -hsmtask_name Task -cm_request_type INTERNAL
    } else {
        oe add_hsmtask_to_job -job_name $name -hsmtask_name Task
    }
    foreach t $o(-tickets) {
        lassign $t tn action max
        oe new_hsmtask_ticket -job_name $name -hsmtask_name Task \
            -ticket_name $tn -device_name MyDevice -actions $action -max_device $max
    }
    oe hsmtask_m_request -job_name $name -hsmtask_name Task -request_file ./$name.req
    oe close_project -save TRUE
    return ./$name.req
}

# oeExport name -- the OE imports $name.rep and exports $name.job.
proc oeExport {name} {
    oe open_project -project ./P$name/P$name.jprj
    oe hsmtask_m_reply -job_name $name -hsmtask_name Task -reply_file ./$name.rep
    oe export_hsmtask -job_name $name -hsmtask_name Task -location ./ -name $name
    oe close_project -save TRUE
    return ./$name.job
}

# fullJob name ?options? -- request, reply (by the CM's current M-HSM),
# job: returns the job file.
proc fullJob {name args} {
    oeJob $name {*}$args
    cm process_job_request -request_file ./$name.req -reply_file ./$name.rep
    oeExport $name
}

# counts -- the codes left of each ticket of the open project.
proc counts {} {
    cmClearLog
    cm get_job_status
    set out {}
    foreach line [cmLog] {
        if {[regexp {^Number of authorization codes left: (.*)$} $line -> n]} {
            lappend out $n
        }
    }
    return $out
}

# run action ?programmer? -- sets the action and runs it: the result, or
# the error code.
proc run {action args} {
    cm set_programming_action -action $action
    if {[catch {cm run_selected_actions {*}$args} r opts]} {
        return [dict get $opts -errorcode]
    }
    return $r
}

# flipByte file offset -- xor one byte of a file with 0x01.
proc flipByte {file offset} {
    set f [open $file r+b]
    seek $f $offset
    binary scan [read $f 1] cu b
    seek $f $offset
    puts -nonewline $f [binary format cu [expr {$b ^ 1}]]
    close $f
}
proc readBytes {file} {
    set f [open $file rb]
    set d [read $f]
    close $f
    return $d
}

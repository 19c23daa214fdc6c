# jobmgr_helpers.tcl --
#
#	Sourced by the tests/jobmgr*.test files, after common.tcl: a Job
#	Manager session in a child interpreter (as the jobmgr program has one
#	per run), and the tutorial's setup as procedures.

# newJm -- a fresh child interpreter with the Job Manager commands, its
# log kept (not echoed).  Returns its name; "jm ..." runs in the current one.
proc newJm {} {
    if {[info exists ::jmInterp] && [interp exists $::jmInterp]} {
        interp delete $::jmInterp
    }
    set ::jmInterp [interp create]
    $::jmInterp eval [list set auto_path $::auto_path]
    $::jmInterp eval {
        package require jobmgr
        spps::log configure -echo ""
    }
    return $::jmInterp
}
proc jm {args} {
    $::jmInterp eval $args
}
proc jmLog {} {
    $::jmInterp eval {spps::log lines}
}
proc jmClearLog {} {
    $::jmInterp eval {spps::log clear}
}

# catchCode script -- {code message errorCode} of a command in the session.
proc catchCode {args} {
    set rc [catch {$::jmInterp eval $args} msg opts]
    if {$rc} {
        return [list $rc $msg [dict get $opts -errorcode]]
    }
    return [list $rc $msg]
}
# errCode script -- just the errorCode (or "ok").
proc errCode {args} {
    if {[catch {$::jmInterp eval $args} msg opts]} {
        return [dict get $opts -errorcode]
    }
    return ok
}

# The tutorial's UUIDs, as its scripts write them.
set ::tutorialParams {
    set_hsm_params -hsm_server_name {SJSOCPRGW7P1} -u_hsm_uuid {000000000000000000000000000001}
        -m_hsm_uuid {0000000000000000000000000000000000000000000000010}
        -u_master_hsm_uuid {000000000000000000000000000000000000000000000030}
        -hsm_keyset_dir {./KeySet}
}

# workspace name -- a fresh directory, made current, with the tutorial's
# JDC in it and a fresh session with the tutorial's HSM parameters.
proc workspace {name} {
    set dir [testdir $name]
    cd $dir
    makeJdc hello_world_sb.jdc
    newJm
    jm {*}[string map {\n " "} $::tutorialParams]
    return $dir
}

# makeJdc file ?extra options? -- the tutorial's design (small, fast).
proc makeJdc {file args} {
    spps::jdc create -file $file -family SmartFusion2 -die M2S090TS \
        -design_name hello_world_sb -fabric_size 2048 \
        -envm_client {MyClient1 1024} -envm_client {MyClient2 512} \
        -security {user_key_mode project factory_test_access {protected}} \
        {*}$args
}

# tutorialProject ?keyset? -- the state after the tutorial's
# Create_Project and Create_HSM_Task scripts (project left open).
proc tutorialProject {{keyset MyKeySet.txt}} {
    jm create_keyset -file $keyset
    jm new_project -location ./ -name MyProject
    jm new_prog_data -data_name MyProgData0 -import_file ./hello_world_sb.jdc \
        -keyset_file $keyset
    jm init_bitstream -data_name MyProgData0 -bitstream_name MyBistream \
        -bitstream_type MASTER -features SECURITY -use_protocol AUTH_CODE \
        -generate_coc -auth_keymode KFPE
    jm new_prog_job -job_name MyProgJob -job_type FPExpress
    jm add_microsemi_prog_device -job_name MyProgJob -device_name MyDevice \
        -device_hw_location 1 -data_name MyProgData0 -bitstream_name MyBistream
    jm add_hsmtask_to_job -job_name MyProgJob -hsmtask_name MyHSMTask
    foreach {t a} {MyTicket1 PROGRAM MyTicket2 VERIFY MyTicket3 ERASE} {
        jm new_hsmtask_ticket -job_name MyProgJob -hsmtask_name MyHSMTask \
            -ticket_name $t -device_name MyDevice -actions $a -max_device 2
    }
}

# projectBytes -- the open project as saved now (the save is
# deterministic: equal bytes mean an equal project).
proc projectBytes {} {
    jm save_project
    set path [file join [pwd] MyProject MyProject.jprj]
    set f [open $path rb]
    set data [read $f]
    close $f
    return $data
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
proc writeBytes {file data} {
    set f [open $file wb]
    puts -nonewline $f $data
    close $f
}

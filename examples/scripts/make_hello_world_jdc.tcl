# make_hello_world_jdc.tcl --
#
#	Regenerates hello_world_sb.jdc, the design the tutorial's scripts
#	import (Scripts_For_OE/JobManager_Create_Project.tcl): the design
#	"hello_world_sb" of a SmartFusion2 Security Evaluation Kit (die
#	M2S090TS, which has a factory key pair, so the KFPE key mode is
#	allowed), with fabric, one eNVM client and security settings.  The
#	content is a function of the design name only, so this script makes
#	the same file, byte for byte, on every machine.
#
#	    tclsh make_hello_world_jdc.tcl ?output.jdc?
#
#	(with the spps package on the Tcl package path, e.g. TCLLIBPATH).

package require spps

set out [expr {$argc > 0 ? [lindex $argv 0]
               : [file join [file dirname [file normalize [info script]]] \
                     hello_world_sb.jdc]}]

spps::jdc create -file $out -family SmartFusion2 -die M2S090TS \
    -design_name hello_world_sb \
    -fabric_size 32768 \
    -envm_client {MyClient1 4096} \
    -security {
        user_key_mode           project
        factory_test_access     {protected by FlashLock/UPK1}
        user_keys               {UEK1 UEK2 UPK1 UPK2 DPK}
        jtag                    enabled
        smartdebug              {protected by DPK}
    }
puts "wrote $out"

# hsm_helpers.tcl --
#
#	Shared by the tests/hsm*.test files (after common.tcl): fixtures that
#	open an HSM with a key store and its services, key import under the
#	root KEK, the reader of the known-answer files in tests/data, and a
#	runner for child tclsh processes.

# The tool log is checked through [spps::log lines]; keep it off stdout.
spps::log configure -echo {}

# hsmOpen NAME ?-id ID? ?-nonce N? ?-max N? --
#	A fresh HSM in [testdir NAME] with a session and a created key store,
#	and every service.  Sets the globals s, ks, km, cipher, sg, sv, rng,
#	hash, mac, ds and hsmDir; returns the session.
proc hsmOpen {name args} {
    array set o {-id 1 -nonce 1234 -max {}}
    array set o $args
    set ::hsmDir [testdir $name]
    set ::s [spps::hsm open_session -dir $::hsmDir]
    set extra {}
    if {$o(-max) ne ""} {
        lappend extra -max_updates_number $o(-max)
    }
    set ::ks [$::s open_key_store_service -key_store_identifier $o(-id) \
                  -authentication_nonce $o(-nonce) -create {*}$extra]
    set ::km [$::ks open_key_management_service]
    set ::cipher [$::ks open_cipher_service]
    set ::sg [$::ks open_signature_generation_service]
    set ::mac [$::ks open_mac_service]
    set ::ds [$::ks open_data_storage_service]
    set ::sv [$::s open_signature_verification_service]
    set ::rng [$::s open_rng_service]
    set ::hash [$::s open_hash_service]
    return $::s
}

# hsmClose -- closes every session the test file left open.
proc hsmClose {} {
    foreach cmd [info commands ::spps::hsm::session*] {
        $cmd close
    }
    spps::log clear
}

# hsmImport KM SESSION KEYTYPE KEY ?manage_key options? --
#	Imports KEY (bytes) wrapped under the session's root KEK, as the key
#	owner would; returns its key identifier.
proc hsmImport {km session keyType key args} {
    set kek [$session export_root_key_encryption_key]
    set wrapped [spps::hsm wrap_key -kek $kek -key $key]
    dict get [$km manage_key -key_type $keyType -part_unique_root_kek \
                  -input_data $wrapped {*}$args] key_identifier
}

# aesKeyType BYTES -- the AES key type of a key of that length.
proc aesKeyType {key} {
    return AES_[expr {8 * [string length $key]}]
}

# katParse TEXT SOURCE --
#	The vectors of known-answer text in the format of tests/data: a list
#	of dicts, one per "[name]" section, with its "field = value" lines as
#	fields (values as written: hex, or a name such as "p256") and "name".
#	Lines starting with # are comments.  SOURCE names the text in errors.
proc katParse {text source} {
    set vectors {}
    set cur {}
    set lineNo 0
    foreach line [split $text \n] {
        incr lineNo
        set line [string trim $line]
        if {$line eq "" || [string index $line 0] eq "#"} {
            continue
        }
        if {[regexp {^\[(.+)\]$} $line -> name]} {
            if {[dict size $cur]} {
                lappend vectors $cur
            }
            set cur [dict create name $name]
            continue
        }
        if {![regexp {^([A-Za-z0-9_]+)\s*=\s*(.*)$} $line -> field value]} {
            error "$source:$lineNo: not a \"field = value\" line: $line"
        }
        dict set cur $field $value
    }
    if {[dict size $cur]} {
        lappend vectors $cur
    }
    return $vectors
}

# katRead FILE -- the vectors of a known-answer file of tests/data (katParse).
proc katRead {file} {
    set f [open $file r]
    set text [read $f]
    close $f
    return [katParse $text $file]
}

# The directory of the known-answer files.
set ::katDir [file join [file dirname [file normalize [info script]]] data]

# childTclsh SCRIPT ?NAME VALUE ...? --
#	Runs SCRIPT in a child tclsh; see childRun.
proc childTclsh {script args} {
    set f [makeFile $script child-[pid]-[incr ::childCount].tcl]
    try {
        childRun $f {*}$args
    } finally {
        removeFile $f
    }
}
set ::childCount 0

# childRun FILE ?NAME VALUE ...? --
#	Runs the script FILE in a child tclsh that loads the same build
#	(TCLLIBPATH and SPPS_BUILD_DIR are inherited), with the environment
#	variables NAME set to VALUE (unset if VALUE is empty).  Returns
#	{exitCode output}, output being stdout and stderr together.
proc childRun {file args} {
    set saved {}
    foreach {k v} $args {
        lappend saved $k [array get ::env $k]
        if {$v eq ""} {
            unset -nocomplain ::env($k)
        } else {
            set ::env($k) $v
        }
    }
    set code [catch {exec [info nameofexecutable] $file 2>@1} out opts]
    foreach {k v} $saved {
        unset -nocomplain ::env($k)
        array set ::env $v
    }
    if {$code} {
        set ec [dict get $opts -errorcode]
        if {[lindex $ec 0] eq "CHILDSTATUS"} {
            # exec adds its own line about the exit status.
            regsub {\n?child process exited abnormally$} $out {} out
            return [list [lindex $ec 2] $out]
        }
        return [list -1 $out]
    }
    return [list 0 $out]
}

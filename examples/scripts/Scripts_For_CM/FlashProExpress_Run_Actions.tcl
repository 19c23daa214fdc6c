# Run programming actions on the board(s) connected to the programmer(s):
# what the tutorial does by choosing an action and clicking RUN (step 24).
# The actions are the script's arguments (PROGRAM, VERIFY, ERASE ...), for
# example:  FPExpress SCRIPT:FlashProExpress_Run_Actions.tcl "SCRIPT_ARGS:VERIFY ERASE"
# With no argument the action is PROGRAM.  Each action uses one
# authorization code of its job ticket for each device.
open_project -project {./MyProgJob/MyProgJob.pro}

if {[info exists argv] && [llength $argv] > 0} {
    set actions $argv
} else {
    set actions {PROGRAM}
}
foreach action $actions {
    set_programming_action -name {MyDevice} -action $action
    # A refused or failed action stops the script (the launcher then exits
    # with a non-zero status); its error code ends with the exit code.
    run_selected_actions
}

close_project

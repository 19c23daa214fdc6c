/*
 * launcher.c --
 *
 *	The jobmgr and FPExpress programs: a tclsh with the spps packages
 *	linked in and the tool's command set loaded.  Built twice, with
 *	SPPS_LAUNCHER_jobmgr or SPPS_LAUNCHER_fpexpress defined.
 */

#include <tcl.h>
#include "tcl/spps_tcl.h"

#if defined(SPPS_LAUNCHER_jobmgr)
#define TOOL_PACKAGE "jobmgr"
#elif defined(SPPS_LAUNCHER_fpexpress)
#define TOOL_PACKAGE "fpexpress"
#else
#error "define SPPS_LAUNCHER_jobmgr or SPPS_LAUNCHER_fpexpress"
#endif

static int
AppInit(Tcl_Interp *interp)
{
    if (Tcl_Init(interp) != TCL_OK) {
	return TCL_ERROR;
    }
    Tcl_StaticPackage(NULL, "Spps", Spps_Init, Spps_SafeInit);
    Tcl_StaticPackage(NULL, "Jobmgr", Jobmgr_Init, NULL);
    Tcl_StaticPackage(NULL, "Fpexpress", Fpexpress_Init, NULL);
    if (Tcl_EvalEx(interp,
	    "package ifneeded spps " PACKAGE_VERSION " {load {} Spps};"
	    "package ifneeded jobmgr " PACKAGE_VERSION " {load {} Jobmgr};"
	    "package ifneeded fpexpress " PACKAGE_VERSION " {load {} Fpexpress};"
	    "package require " TOOL_PACKAGE, -1, TCL_EVAL_GLOBAL) != TCL_OK) {
	return TCL_ERROR;
    }
    return TCL_OK;
}

int
main(int argc, char *argv[])
{
    Tcl_Main(argc, argv, AppInit);
    return 0;
}

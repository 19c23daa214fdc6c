/*
 * tcl_init.c --
 *
 *	Package initialisation.  One shared library provides three packages:
 *
 *	  spps       the ::spps namespace: the HSM engine face (spps::hsm), the
 *	             simulated bench (spps::sim), file tools (spps::jdc) and the
 *	             tool log (spps::log);
 *	  jobmgr     the Job Manager commands in the global namespace;
 *	  fpexpress  the FlashPro Express commands in the global namespace.
 *
 *	Every command keeps its state in the interpreter (assoc data or
 *	command client data), so the packages can live in several
 *	interpreters of one process without sharing anything by accident.
 */

#include "spps_tcl.h"

/*
 * The areas of the spps package, initialised in this order.  A new area
 * adds its init function here.
 */
static int (*const sppsAreas[])(Tcl_Interp *) = {
    SppsLog_Init,
    SppsHsm_Init,
    SppsJdc_Init,
    SppsSim_Init,
    NULL
};

/* Registration of the static tool packages is process-wide: once. */
TCL_DECLARE_MUTEX(staticMutex)
static int staticRegistered = 0;

int
Spps_Init(Tcl_Interp *interp)
{
    int i;

#ifdef USE_TCL_STUBS
    if (Tcl_InitStubs(interp, "8.6", 0) == NULL) {
	return TCL_ERROR;
    }
#endif
    if (Tcl_CreateNamespace(interp, "::spps", NULL, NULL) == NULL
	    && Tcl_FindNamespace(interp, "::spps", NULL, 0) == NULL) {
	return TCL_ERROR;
    }
    for (i = 0; sppsAreas[i] != NULL; i++) {
	if (sppsAreas[i](interp) != TCL_OK) {
	    return TCL_ERROR;
	}
    }
    /*
     * The tool packages live in this same library, which Tcl 8.6 will not
     * load a second time for another package: offer their init functions
     * as static packages (pkgIndex.tcl loads them with "load {} Jobmgr").
     */
    Tcl_MutexLock(&staticMutex);
    if (!staticRegistered) {
	Tcl_StaticPackage(NULL, "Jobmgr", Jobmgr_Init, NULL);
	Tcl_StaticPackage(NULL, "Fpexpress", Fpexpress_Init, NULL);
	staticRegistered = 1;
    }
    Tcl_MutexUnlock(&staticMutex);
    return Tcl_PkgProvide(interp, "spps", PACKAGE_VERSION);
}

/*
 * Spps_SafeInit --
 *	spps reads and writes files and state directories: it has nothing to
 *	offer a safe interpreter, and says so.
 */
int
Spps_SafeInit(Tcl_Interp *interp)
{
    Tcl_SetObjResult(interp, Tcl_NewStringObj(
	    "package spps cannot be loaded into a safe interpreter", -1));
    return TCL_ERROR;
}

/* Loads spps first: both command sets stand on it. */
static int
RequireSpps(Tcl_Interp *interp)
{
#ifdef USE_TCL_STUBS
    if (Tcl_InitStubs(interp, "8.6", 0) == NULL) {
	return TCL_ERROR;
    }
#endif
    return Tcl_PkgRequire(interp, "spps", PACKAGE_VERSION, 1) ? TCL_OK : TCL_ERROR;
}

/*
 * Jobmgr_Init, Fpexpress_Init --
 *	Provide the two tool packages.  Their commands are registered by
 *	tcl_jobmgr.c and tcl_fpexpress.c (issues 3 and 4); until those land
 *	the packages load with spps alone.
 */
int
Jobmgr_Init(Tcl_Interp *interp)
{
    if (RequireSpps(interp) != TCL_OK || SppsJobmgr_Init(interp) != TCL_OK) {
	return TCL_ERROR;
    }
    return Tcl_PkgProvide(interp, "jobmgr", PACKAGE_VERSION);
}

int
Fpexpress_Init(Tcl_Interp *interp)
{
    if (RequireSpps(interp) != TCL_OK || SppsFpexpress_Init(interp) != TCL_OK) {
	return TCL_ERROR;
    }
    return Tcl_PkgProvide(interp, "fpexpress", PACKAGE_VERSION);
}

/*
 * unit.h --
 *
 *	A minimal C unit-test harness for the layers below Tcl (engine, formats,
 *	roles, simulated bench).  Each test binary defines test functions, lists
 *	them in main with UNIT_RUN, and ends with UNIT_DONE, which prints
 *
 *	    unit: <name>: Total N Passed P Failed F
 *
 *	(the line tests/all.tcl adds to its totals) and returns non-zero on any
 *	failure.  A failed check prints file:line and the expression.
 */
#ifndef SPPS_UNIT_H
#define SPPS_UNIT_H

#include <stdio.h>
#include <string.h>

static int unitChecksFailed;	/* failed checks in the current test */
static int unitPassed, unitFailed;
static const char *unitCurrent = "";

#define CHECK(expr)							\
    do {								\
	if (!(expr)) {							\
	    unitChecksFailed++;						\
	    fprintf(stderr, "%s:%d: %s: check failed: %s\n",		\
		    __FILE__, __LINE__, unitCurrent, #expr);		\
	}								\
    } while (0)

/* CHECK_EQ for integer-valued expressions, printing both sides. */
#define CHECK_EQ(a, b)							\
    do {								\
	long long unitA = (long long)(a), unitB = (long long)(b);	\
	if (unitA != unitB) {						\
	    unitChecksFailed++;						\
	    fprintf(stderr, "%s:%d: %s: %s == %s failed: %lld != %lld\n",\
		    __FILE__, __LINE__, unitCurrent, #a, #b, unitA, unitB);\
	}								\
    } while (0)

#define CHECK_MEM(a, b, n)						\
    CHECK(memcmp((a), (b), (n)) == 0)

#define UNIT_RUN(fn)							\
    do {								\
	unitCurrent = #fn;						\
	unitChecksFailed = 0;						\
	fn();								\
	if (unitChecksFailed) {						\
	    unitFailed++;						\
	    fprintf(stderr, "==== %s FAILED\n", #fn);			\
	} else {							\
	    unitPassed++;						\
	}								\
    } while (0)

#define UNIT_DONE(name)							\
    (printf("unit: %s: Total %d Passed %d Failed %d\n", (name),		\
	    unitPassed + unitFailed, unitPassed, unitFailed),		\
     fflush(stdout), unitFailed ? 1 : 0)

#endif /* SPPS_UNIT_H */

/*
 * sim.h --
 *
 *	The simulated bench: programmers, the boards on them, and the devices
 *	on the boards (docs/FORMATS.md, "Bench").  A device runs its side of
 *	every protocol (proto_device.h): it answers the authenticity check
 *	with its own keys, opens an authorization code only if it is for
 *	itself and this session, decrypts and checks the bitstream, programs,
 *	verifies or erases, and MACs a CoC.
 *
 *	State: the bench's own HSM at $SPPS_HOME/bench (role_hsm_open_dir),
 *	with its sealing key in firmware key store ROLE_FW_STORE_BENCH (the
 *	factory seals each new device's secrets to it) and every record in
 *	firmware blobs ("bench.state", "dev.<dsn>"), so device secrets and
 *	keys never reach the disk in clear, and two processes sharing the
 *	bench see each other's boards.  Devices are manufactured by the
 *	factory (sim_factory.h).
 *
 *	Conventions are proto.h's: 0 or -1 with a sentence in err; sim_fail
 *	(below) says which condition.
 */

#ifndef SPPS_SIM_H
#define SPPS_SIM_H

#include "proto/proto.h"
#include "proto/proto_device.h"

/* Conditions of a refusal (SimError.cond). */
typedef enum SimCond {
    SIM_OK = 0,
    SIM_FAIL,			/* HSM, I/O, memory */
    SIM_NO_PROGRAMMER,		/* no programmer of that name */
    SIM_PROGRAMMER_EXISTS,	/* add/rename to a name in use */
    SIM_NO_BOARD,		/* no board (device) on that programmer */
    SIM_NO_DEVICE,		/* no device of that DSN */
    SIM_BAD_VALUE,		/* a die, DSN, type or name that is not valid */
    SIM_PULLED,			/* the board was pulled (fault) */
    SIM_REFUSED,		/* the device refused: code, bitstream, mode */
    SIM_VERIFY		/* VERIFY found other content */
} SimCond;

typedef struct SimError {
    SimCond cond;
    ProtoError e;
} SimError;

typedef struct SimBench SimBench;

/* Opens (creating on first use) the bench of $SPPS_HOME. */
int sim_bench_open(SimBench **bench, SimError *err);
void sim_bench_close(SimBench *bench);
const char *sim_bench_dir(const SimBench *bench);

/* ------------------------------------------------------------------ */
/* Programmers and boards                                               */
/* ------------------------------------------------------------------ */

#define SIM_NAME_MAX 64

typedef struct SimProgrammer {
    char name[SIM_NAME_MAX + 1];
    char type[16];			/* FlashPro3 ... FlashPro6 */
    int hasBoard;
    uint8_t dsn[PROTO_DSN];		/* of the device on its board */
    char die[32];
} SimProgrammer;

/* Programmer types the bench makes, and their default-name style. */
int sim_programmer_type_valid(const char *type);

/*
 * sim_programmer_add --
 *	Connects a new programmer of type (NULL: FlashPro4) named name (NULL:
 *	a fresh id in the style of its type).  out receives it.
 */
int sim_programmer_add(SimBench *bench, const char *name, const char *type,
	SimProgrammer *out, SimError *err);
int sim_programmer_remove(SimBench *bench, const char *name, SimError *err);
int sim_programmer_rename(SimBench *bench, const char *name,
	const char *newName, SimError *err);
int sim_programmer_get(SimBench *bench, const char *name, SimProgrammer *out,
	SimError *err);
/* All programmers in the order they were added (malloc'ed array). */
int sim_programmer_list(SimBench *bench, SimProgrammer **list, size_t *n,
	SimError *err);

/*
 * sim_board_insert --
 *	Puts a board on programmer prg (NULL: the first programmer; if the
 *	bench has none, programmer 93688, a FlashPro4, is connected first),
 *	replacing the board there.  dsn NULL: a new blank device of die (NULL:
 *	the die of the board replaced, else M2S090) is manufactured by the
 *	factory.  dsn given: the device of that DSN if the bench knows it (a
 *	board pulled earlier comes back as it was; die, if given, must match),
 *	else a new blank device with that DSN.  dsnOut receives the DSN.
 */
int sim_board_insert(SimBench *bench, const char *prg, const char *die,
	const uint8_t *dsn, uint8_t dsnOut[PROTO_DSN], char *prgOut,
	SimError *err);
/* Takes the board off its programmer (the device keeps its state). */
int sim_board_pull(SimBench *bench, const char *prg, SimError *err);

/* A device as the bench knows it. */
typedef struct SimDeviceInfo {
    uint8_t dsn[PROTO_DSN];
    char die[32];
    char family[32];
    int hasKfp;
    char programmer[SIM_NAME_MAX + 1];	/* "" if not on a programmer */
    int programmed;			/* a design is present */
    char designName[128];
    uint8_t designDigest[PROTO_DIGEST];	/* of the bitstream last programmed */
    uint8_t fabricDigest[PROTO_DIGEST];	/* SHA-384 of the fabric data */
    uint8_t contentDigest[PROTO_DIGEST];	/* of all it holds (docs/FORMATS.md) */
    size_t nEnvm;			/* eNVM clients programmed */
    size_t nKeys;			/* user keys programmed */
    char keyNames[256];			/* "UEK1 UPK1 ..." */
    uint64_t actions;			/* actions run (its own counter) */
    uint64_t cocs;			/* CoCs it produced */
    int interrupted;			/* last action cut off (board pulled) */
} SimDeviceInfo;

int sim_device_info(SimBench *bench, const uint8_t dsn[PROTO_DSN],
	SimDeviceInfo *info, SimError *err);
/* Every device of the bench (malloc'ed array), sorted by DSN. */
int sim_device_list(SimBench *bench, SimDeviceInfo **list, size_t *n,
	SimError *err);

/* ------------------------------------------------------------------ */
/* Faults                                                               */
/* ------------------------------------------------------------------ */

/*
 * The fault switch: a board is pulled at a step of the next action run on
 * a programmer (any programmer if prg is ""), once.  Steps, in order:
 *   auth     while answering the authenticity check (no code issued yet);
 *   code     after the code was issued, before the device received it;
 *   program  in the middle of the action (PROGRAM leaves the design
 *            erased, VERIFY and ERASE nothing done);
 *   coc      after the action, before the CoC reached the M-HSM.
 * Faults are bench state: every process sharing the bench sees them.
 */
typedef enum SimStep {
    SIM_STEP_AUTH = 1,
    SIM_STEP_CODE = 2,
    SIM_STEP_PROGRAM = 3,
    SIM_STEP_COC = 4
} SimStep;

const char *sim_step_name(SimStep step);
SimStep sim_step_parse(const char *name);	/* 0 if unknown */

typedef struct SimFault {
    char kind[16];			/* "pull_board" */
    SimStep step;
    char programmer[SIM_NAME_MAX + 1];	/* "" any */
} SimFault;

int sim_fault_set(SimBench *bench, const SimFault *fault, SimError *err);
int sim_fault_clear(SimBench *bench, SimError *err);
int sim_fault_list(SimBench *bench, SimFault **list, size_t *n, SimError *err);

/*
 * sim_fault_point --
 *	Called by whoever drives an action at each step: if a fault is armed
 *	for this step and programmer, it fires (is disarmed, the board is
 *	pulled; at SIM_STEP_PROGRAM the device is left interrupted) and 1 is
 *	returned; else 0; -1 on failure.
 */
int sim_fault_point(SimBench *bench, const char *prg, SimStep step,
	SimError *err);

/* ------------------------------------------------------------------ */
/* A device's side of an action                                         */
/* ------------------------------------------------------------------ */

/*
 * A session of the device on a programmer's board: it lives in memory
 * only (power off ends it), from the authenticity check to the CoC.
 */
typedef struct SimSession SimSession;

/*
 * sim_session_open --
 *	Powers up the device on prg's board: SIM_NO_BOARD if there is none.
 *	info (optional) receives what the programmer reads of it (DSN, die).
 */
int sim_session_open(SimBench *bench, const char *prg, SimSession **session,
	SimDeviceInfo *info, SimError *err);
void sim_session_close(SimSession *session);

/* Answers a challenge (ProtoDevAuth encoding, malloc'ed). */
int sim_session_authenticate(SimSession *session,
	const uint8_t challenge[PROTO_NONCE], uint8_t **answer, size_t *len,
	SimError *err);

/* What an action did, for the log. */
typedef struct SimResult {
    ProtoKeyMode mode;
    size_t nEnvm;			/* eNVM clients written or checked */
    size_t nKeys;			/* user keys programmed */
    int erasedFirst;			/* PROGRAM erased an earlier design */
} SimResult;

/*
 * sim_session_run --
 *	Runs action with the authorization code and the bitstream: opens the
 *	code (SIM_REFUSED if it is not for this device and session, or for
 *	another action), decrypts the bitstream with its KIP and checks the
 *	design digest, then PROGRAM writes the design and keys, VERIFY
 *	compares (SIM_VERIFY on a difference), ERASE clears the design (and
 *	the security settings and user keys when the bitstream has the
 *	SECURITY feature: "ERASE erases fabric and security").  On
 *	success *coc (malloc'ed) is the device's CoC message.  The device's
 *	state is written durably.  The session ends either way.
 */
int sim_session_run(SimSession *session, const char *action,
	const uint8_t *code, size_t codeLen, const ProtoBitstream *bitstream,
	uint8_t **coc, size_t *cocLen, SimResult *result, SimError *err);

/*
 * sim_session_check --
 *	The actions that need no code: DEVICE_INFO and READ_IDCODE read the
 *	device; VERIFY_DIGEST recomputes its digests from what it holds and
 *	compares them with the ones stored at programming (SIM_VERIFY on a
 *	difference).
 */
int sim_session_check(SimSession *session, const char *action,
	SimDeviceInfo *info, SimError *err);

/* DSN text: 32 lower-case hex digits; parsing takes 1..32 hex digits
 * (zero-extended on the left). */
void sim_dsn_format(const uint8_t dsn[PROTO_DSN], char out[2 * PROTO_DSN + 1]);
int sim_dsn_parse(const char *text, uint8_t dsn[PROTO_DSN]);

/* ------------------------------------------------------------------ */
/* Between sim_bench.c and sim_device.c only                            */
/* ------------------------------------------------------------------ */

struct RoleHsm;
/* The bench's HSM (for device records). */
struct RoleHsm *sim_bench_hsm(SimBench *bench);
/* Makes a new blank device (factory keys) and writes its record; called
 * inside a bench transaction.  SIM_BAD_VALUE for an unknown die. */
int sim_device_make(SimBench *bench, const uint8_t dsn[PROTO_DSN],
	const char *die, SimError *err);
/* 1 if the bench holds a device of that DSN (die copied out), 0 if not. */
int sim_device_exists(SimBench *bench, const uint8_t dsn[PROTO_DSN],
	char die[32], SimError *err);
/* The device a programmer's board carries: 1, 0 if none. */
int sim_bench_board(SimBench *bench, const char *prg, uint8_t dsn[PROTO_DSN],
	SimError *err);

#endif /* SPPS_SIM_H */

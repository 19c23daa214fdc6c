/*
 * sim_bench.c --
 *
 *	The simulated bench (sim.h): the programmers connected to this
 *	machine, the board each one carries, and the fault switch.  State is
 *	the firmware blob "bench.state" of the bench's own HSM at
 *	$SPPS_HOME/bench (docs/FORMATS.md, "Bench"), read and rewritten in
 *	hsm_fw_transaction, so that processes sharing the bench see one
 *	consistent set of boards.  The devices themselves are sim_device.c's.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "plat.h"
#include "roles/role_common.h"
#include "sim/sim.h"
#include "sim/sim_factory.h"

#define STATE_BLOB "bench.state"
#define STATE_VERSION 1
#define MAX_PROGRAMMERS 256
#define MAX_FAULTS 64
#define DEFAULT_PROGRAMMER "93688"
#define DEFAULT_DIE "M2S090"

/* Tags of bench.state (docs/FORMATS.md, "Bench"). */
enum { ST_VERSION = 1, ST_PROGRAMMER = 2, ST_FAULT = 3 };
enum { PR_NAME = 1, PR_TYPE = 2, PR_DSN = 3, PR_DIE = 4 };
enum { FT_KIND = 1, FT_STEP = 2, FT_PROGRAMMER = 3 };

struct SimBench {
    RoleHsm *hsm;
};

typedef struct BenchState {
    size_t nPrg;
    SimProgrammer prg[MAX_PROGRAMMERS];
    size_t nFault;
    SimFault fault[MAX_FAULTS];
} BenchState;

static const char *const programmerTypes[] = {
    "FlashPro3", "FlashPro4", "FlashPro5", "FlashPro6", NULL
};

/*
 *----------------------------------------------------------------------
 *
 * SimFail --
 *	Fills a SimError with a condition and a sentence; returns -1.
 *
 *----------------------------------------------------------------------
 */

static int
SimFail(SimError *err, SimCond cond, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(printf, 3, 4)))
#endif
	;
static int
SimFail(SimError *err, SimCond cond, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL) {
	err->cond = cond;
	va_start(ap, fmt);
	vsnprintf(err->e.msg, sizeof(err->e.msg), fmt, ap);
	va_end(ap);
    }
    return -1;
}

/* A ProtoError from a lower layer becomes a SIM_FAIL. */
static int
SimFromProto(SimError *err, const ProtoError *pe)
{
    return SimFail(err, SIM_FAIL, "%s", pe->msg);
}

/*
 *----------------------------------------------------------------------
 *
 * Names and texts.
 *
 *----------------------------------------------------------------------
 */

/*
 * sim_programmer_type_valid --
 *	Whether the bench makes programmers of that type.
 */
int
sim_programmer_type_valid(const char *type)
{
    int i;

    for (i = 0; type != NULL && programmerTypes[i] != NULL; i++) {
	if (strcmp(type, programmerTypes[i]) == 0) {
	    return 1;
	}
    }
    return 0;
}

/* Programmer names: 1..64 printable characters, no space or quote. */
static int
NameValid(const char *name)
{
    size_t i, n = name != NULL ? strlen(name) : 0;

    if (n == 0 || n > SIM_NAME_MAX) {
	return 0;
    }
    for (i = 0; i < n; i++) {
	unsigned char c = (unsigned char) name[i];

	if (c <= 0x20 || c >= 0x7F || c == '\'' || c == '"' || c == '\\'
		|| c == '{' || c == '}') {
	    return 0;
	}
    }
    return 1;
}

/*
 * sim_dsn_format --
 *	A DSN as 32 lower-case hex digits.
 */
void
sim_dsn_format(const uint8_t dsn[PROTO_DSN], char out[2 * PROTO_DSN + 1])
{
    proto_hex(dsn, PROTO_DSN, out);
}

/*
 * sim_dsn_parse --
 *	A DSN from 1 to 32 hex digits (an optional 0x), zero-extended on
 *	the left.
 */
int
sim_dsn_parse(const char *text, uint8_t dsn[PROTO_DSN])
{
    char padded[2 * PROTO_DSN + 1];
    size_t n = text != NULL ? strlen(text) : 0, i;

    if (n >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
	text += 2;
	n -= 2;
    }
    if (n == 0 || n > 2 * PROTO_DSN) {
	return -1;
    }
    for (i = 0; i < n; i++) {
	char c = text[i];

	if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
		|| (c >= 'A' && c <= 'F'))) {
	    return -1;
	}
    }
    memset(padded, '0', 2 * PROTO_DSN - n);
    memcpy(padded + 2 * PROTO_DSN - n, text, n + 1);
    return proto_unhex(padded, dsn, PROTO_DSN) == 0 ? 0 : -1;
}

static const char *const stepNames[] = {NULL, "auth", "code", "program", "coc"};

/*
 * sim_step_name --
 *	The name of a fault step.
 */
const char *
sim_step_name(SimStep step)
{
    return (step >= SIM_STEP_AUTH && step <= SIM_STEP_COC) ? stepNames[step] : "?";
}

/*
 * sim_step_parse --
 *	A fault step from its name; 0 for an unknown one.
 */
SimStep
sim_step_parse(const char *name)
{
    int i;

    for (i = SIM_STEP_AUTH; i <= SIM_STEP_COC; i++) {
	if (name != NULL && strcmp(name, stepNames[i]) == 0) {
	    return (SimStep) i;
	}
    }
    return (SimStep) 0;
}

/*
 *----------------------------------------------------------------------
 *
 * State: encoding, reading, and the transaction wrapper.
 *
 *----------------------------------------------------------------------
 */

/*
 * StateEncode --
 *	Encodes the bench state (docs/FORMATS.md, "Bench").
 */
static int
StateEncode(const BenchState *st, ProtoBuf *b)
{
    size_t i, mark;

    proto_put_u64(b, ST_VERSION, STATE_VERSION);
    for (i = 0; i < st->nPrg; i++) {
	const SimProgrammer *p = &st->prg[i];

	mark = proto_begin(b, ST_PROGRAMMER);
	proto_put_str(b, PR_NAME, p->name);
	proto_put_str(b, PR_TYPE, p->type);
	if (p->hasBoard) {
	    proto_put_bytes(b, PR_DSN, p->dsn, PROTO_DSN);
	    proto_put_str(b, PR_DIE, p->die);
	}
	proto_end(b, mark);
    }
    for (i = 0; i < st->nFault; i++) {
	const SimFault *f = &st->fault[i];

	mark = proto_begin(b, ST_FAULT);
	proto_put_str(b, FT_KIND, f->kind);
	proto_put_u64(b, FT_STEP, (uint64_t) f->step);
	proto_put_str(b, FT_PROGRAMMER, f->programmer);
	proto_end(b, mark);
    }
    return b->failed ? -1 : 0;
}

/* Copies a text item into a fixed buffer: 0, or -1 if it does not fit. */
static int
ItemText(const uint8_t *data, size_t len, uint16_t tag, char *out,
	size_t outLen)
{
    ProtoItem item;

    if (proto_find(data, len, tag, &item) != 1 || item.len >= outLen
	    || memchr(item.val, 0, item.len) != NULL) {
	return -1;
    }
    memcpy(out, item.val, item.len);
    out[item.len] = '\0';
    return 0;
}

/*
 * StateDecode --
 *	Decodes the bench state, refusing a damaged one.
 */
static int
StateDecode(const uint8_t *data, size_t len, BenchState *st, SimError *err)
{
    ProtoReader r;
    ProtoItem item, it;
    uint64_t version = 0, step;
    int rc;

    memset(st, 0, sizeof(*st));
    if (proto_find(data, len, ST_VERSION, &item) != 1
	    || proto_item_u64(&item, &version) != 0 || version != STATE_VERSION) {
	return SimFail(err, SIM_FAIL, "bench state: version %llu is not one "
		"this version reads", (unsigned long long) version);
    }
    proto_reader_init(&r, data, len);
    while ((rc = proto_next(&r, &item)) == 1) {
	if (item.tag == ST_PROGRAMMER) {
	    SimProgrammer *p;

	    if (st->nPrg == MAX_PROGRAMMERS) {
		return SimFail(err, SIM_FAIL, "bench state: too many programmers");
	    }
	    p = &st->prg[st->nPrg++];
	    if (ItemText(item.val, item.len, PR_NAME, p->name,
		    sizeof(p->name)) != 0
		    || ItemText(item.val, item.len, PR_TYPE, p->type,
			    sizeof(p->type)) != 0) {
		return SimFail(err, SIM_FAIL, "bench state: programmer %lu is "
			"damaged", (unsigned long) st->nPrg);
	    }
	    if (proto_find(item.val, item.len, PR_DSN, &it) == 1) {
		if (proto_item_fixed(&it, p->dsn, PROTO_DSN) != 0
			|| ItemText(item.val, item.len, PR_DIE, p->die,
				sizeof(p->die)) != 0) {
		    return SimFail(err, SIM_FAIL, "bench state: the board of "
			    "programmer '%s' is damaged", p->name);
		}
		p->hasBoard = 1;
	    }
	} else if (item.tag == ST_FAULT) {
	    SimFault *f;

	    if (st->nFault == MAX_FAULTS) {
		return SimFail(err, SIM_FAIL, "bench state: too many faults");
	    }
	    f = &st->fault[st->nFault++];
	    if (ItemText(item.val, item.len, FT_KIND, f->kind,
		    sizeof(f->kind)) != 0
		    || ItemText(item.val, item.len, FT_PROGRAMMER, f->programmer,
			    sizeof(f->programmer)) != 0
		    || proto_find(item.val, item.len, FT_STEP, &it) != 1
		    || proto_item_u64(&it, &step) != 0
		    || sim_step_name((SimStep) step)[0] == '?') {
		return SimFail(err, SIM_FAIL, "bench state: fault %lu is "
			"damaged", (unsigned long) st->nFault);
	    }
	    f->step = (SimStep) step;
	}
    }
    if (rc < 0) {
	return SimFail(err, SIM_FAIL, "bench state: malformed record");
    }
    return 0;
}

/*
 * StateRead --
 *	Reads the bench state (empty when there is none yet).
 */
static int
StateRead(SimBench *bench, BenchState *st, SimError *err)
{
    ProtoError pe;
    uint8_t *data = NULL;
    size_t len = 0;
    int found, rc;

    if (role_blob_read(bench->hsm, STATE_BLOB, &data, &len, &found, &pe) != 0) {
	return SimFromProto(err, &pe);
    }
    if (!found) {
	memset(st, 0, sizeof(*st));
	return 0;
    }
    rc = StateDecode(data, len, st, err);
    free(data);
    return rc;
}

/*
 * StateWrite --
 *	Writes the bench state (a blob: durable when it returns).
 */
static int
StateWrite(SimBench *bench, const BenchState *st, SimError *err)
{
    ProtoError pe;
    ProtoBuf b;
    int rc;

    proto_buf_init(&b);
    if (StateEncode(st, &b) != 0) {
	proto_buf_free(&b);
	return SimFail(err, SIM_FAIL, "bench state: no memory");
    }
    rc = role_blob_write(bench->hsm, STATE_BLOB, b.data, b.len, &pe);
    proto_buf_free(&b);
    return rc == 0 ? 0 : SimFromProto(err, &pe);
}

/*
 * A change of the state: fn edits st (read inside the bench's
 * transaction) and returns 1 to have it written, 0 to leave it, -1 to
 * fail.
 */
typedef int (*ChangeFn)(SimBench *bench, BenchState *st, void *data,
	SimError *err);

typedef struct Change {
    SimBench *bench;
    ChangeFn fn;
    void *data;
    SimError *err;
    int rc;
} Change;

/*
 * ChangeTrampoline --
 *	Reads, changes and writes the bench state inside the bench HSM's
 *	transaction.
 */
static hsm_err_t
ChangeTrampoline(hsm_hdl_t session, void *ctx)
{
    Change *c = ctx;
    BenchState *st;
    int rc;

    (void) session;
    if ((st = malloc(sizeof(*st))) == NULL) {
	c->rc = SimFail(c->err, SIM_FAIL, "no memory");
	return HSM_GENERAL_ERROR;
    }
    if ((rc = StateRead(c->bench, st, c->err)) == 0
	    && (rc = c->fn(c->bench, st, c->data, c->err)) == 1) {
	rc = StateWrite(c->bench, st, c->err);
    }
    free(st);
    c->rc = rc < 0 ? -1 : 0;
    return c->rc == 0 ? HSM_NO_ERROR : HSM_GENERAL_ERROR;
}

/*
 * ChangeState --
 *	A read-modify-write of the bench state, serialised against every
 *	process sharing the bench.
 */
static int
ChangeState(SimBench *bench, ChangeFn fn, void *data, SimError *err)
{
    Change c;
    ProtoError pe;
    hsm_err_t code;

    c.bench = bench;
    c.fn = fn;
    c.data = data;
    c.err = err;
    c.rc = -1;
    code = hsm_fw_transaction(bench->hsm->session, ChangeTrampoline, &c);
    if (c.rc != 0) {
	return -1;
    }
    if (code != HSM_NO_ERROR) {
	role_hsm_error(&pe, "bench", code);
	return SimFromProto(err, &pe);
    }
    return 0;
}

/*
 * FindProgrammer --
 *	A programmer of the state by name, or NULL.
 */
static SimProgrammer *
FindProgrammer(BenchState *st, const char *name)
{
    size_t i;

    for (i = 0; i < st->nPrg; i++) {
	if (strcmp(st->prg[i].name, name) == 0) {
	    return &st->prg[i];
	}
    }
    return NULL;
}

/*
 * NoProgrammer --
 *	The tool's message for an unknown programmer.
 */
static int
NoProgrammer(SimError *err, const char *name)
{
    return SimFail(err, SIM_NO_PROGRAMMER, "The programmer with name '%s' "
	    "does not exist.", name);
}

/*
 *----------------------------------------------------------------------
 *
 * sim_bench_open, sim_bench_close --
 *	The bench is an HSM of its own in $SPPS_HOME/bench.
 *
 *----------------------------------------------------------------------
 */

/*
 * sim_bench_open --
 *	Opens the bench: an HSM of its own in $SPPS_HOME/bench, created on
 *	first use.
 */
int
sim_bench_open(SimBench **out, SimError *err)
{
    SimBench *bench;
    ProtoError pe;
    char *home, *dir;

    *out = NULL;
    if ((home = plat_spps_home()) == NULL) {
	return SimFail(err, SIM_FAIL, "cannot find the spps home directory "
		"(set SPPS_HOME)");
    }
    dir = plat_join(home, "bench");
    free(home);
    if (dir == NULL || (bench = calloc(1, sizeof(*bench))) == NULL) {
	free(dir);
	return SimFail(err, SIM_FAIL, "no memory");
    }
    if (role_hsm_open_dir(dir, &bench->hsm, &pe) != 0) {
	free(dir);
	free(bench);
	return SimFail(err, SIM_FAIL, "cannot open the bench: %s", pe.msg);
    }
    free(dir);
    *out = bench;
    return 0;
}

/*
 * sim_bench_close --
 *	Closes the bench.
 */
void
sim_bench_close(SimBench *bench)
{
    if (bench != NULL) {
	role_hsm_close(bench->hsm);
	free(bench);
    }
}

/*
 * sim_bench_dir --
 *	The bench's state directory.
 */
const char *
sim_bench_dir(const SimBench *bench)
{
    return bench->hsm->dir;
}

/*
 * sim_bench_hsm --
 *	The bench's HSM, for sim_device.c.
 */
struct RoleHsm *
sim_bench_hsm(SimBench *bench)
{
    return bench->hsm;
}

/*
 *----------------------------------------------------------------------
 *
 * Programmers.
 *
 *----------------------------------------------------------------------
 */

typedef struct AddCtx {
    const char *name, *type;
    SimProgrammer *out;
} AddCtx;

/* A fresh name in the style of the type: 93688, S20053Q3C8, E2004NSXB1. */
static int
FreshName(BenchState *st, const char *type, char *name, size_t len,
	SimError *err)
{
    static const char alnum[] = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    uint8_t r[8];
    int tries, i;

    for (tries = 0; tries < 100; tries++) {
	if (proto_random(r, sizeof(r)) != 0) {
	    return SimFail(err, SIM_FAIL, "random generator failed");
	}
	if (strcmp(type, "FlashPro5") == 0 || strcmp(type, "FlashPro6") == 0) {
	    char id[11];

	    id[0] = type[8] == '5' ? 'S' : 'E';
	    id[1] = '2';
	    for (i = 0; i < 8; i++) {
		id[2 + i] = alnum[r[i] % (sizeof(alnum) - 1)];
	    }
	    id[10] = '\0';
	    snprintf(name, len, "%s", id);
	} else {
	    snprintf(name, len, "%s%05u", strcmp(type, "FlashPro3") == 0
		    ? "FP3" : "", (unsigned) (((unsigned) r[0] << 16
		    | (unsigned) r[1] << 8 | r[2]) % 100000));
	}
	if (FindProgrammer(st, name) == NULL) {
	    return 0;
	}
    }
    return SimFail(err, SIM_FAIL, "no free programmer name");
}

/*
 * AddChange --
 *	Connects a programmer (a name of its own, or a fresh one).
 */
static int
AddChange(SimBench *bench, BenchState *st, void *data, SimError *err)
{
    AddCtx *a = data;
    SimProgrammer *p;

    (void) bench;
    if (a->name != NULL && FindProgrammer(st, a->name) != NULL) {
	return SimFail(err, SIM_PROGRAMMER_EXISTS, "a programmer named '%s' "
		"is already connected", a->name);
    }
    if (st->nPrg == MAX_PROGRAMMERS) {
	return SimFail(err, SIM_BAD_VALUE, "the bench has %d programmers "
		"already", MAX_PROGRAMMERS);
    }
    p = &st->prg[st->nPrg];
    memset(p, 0, sizeof(*p));
    snprintf(p->type, sizeof(p->type), "%s", a->type);
    if (a->name != NULL) {
	snprintf(p->name, sizeof(p->name), "%s", a->name);
    } else if (FreshName(st, a->type, p->name, sizeof(p->name), err) != 0) {
	return -1;
    }
    st->nPrg++;
    *a->out = *p;
    return 1;
}

/*
 * sim_programmer_add --
 *	Connects a programmer (sim.h).
 */
int
sim_programmer_add(SimBench *bench, const char *name, const char *type,
	SimProgrammer *out, SimError *err)
{
    AddCtx a;
    SimProgrammer dummy;

    if (type == NULL) {
	type = "FlashPro4";
    }
    if (!sim_programmer_type_valid(type)) {
	return SimFail(err, SIM_BAD_VALUE, "unknown programmer type '%.40s': "
		"FlashPro3, FlashPro4, FlashPro5 or FlashPro6", type);
    }
    if (name != NULL && !NameValid(name)) {
	return SimFail(err, SIM_BAD_VALUE, "invalid programmer name '%.64s': 1 "
		"to %d printable characters, no spaces, quotes or braces", name,
		SIM_NAME_MAX);
    }
    a.name = name;
    a.type = type;
    a.out = out != NULL ? out : &dummy;
    return ChangeState(bench, AddChange, &a, err);
}

/*
 * RemoveChange --
 *	Disconnects a programmer.
 */
static int
RemoveChange(SimBench *bench, BenchState *st, void *data, SimError *err)
{
    SimProgrammer *p = FindProgrammer(st, data);

    (void) bench;
    if (p == NULL) {
	return NoProgrammer(err, data);
    }
    memmove(p, p + 1, (size_t) (st->prg + st->nPrg - p - 1) * sizeof(*p));
    st->nPrg--;
    return 1;
}

/*
 * sim_programmer_remove --
 *	Disconnects a programmer (its board's device stays known).
 */
int
sim_programmer_remove(SimBench *bench, const char *name, SimError *err)
{
    return ChangeState(bench, RemoveChange, (void *) name, err);
}

typedef struct RenameCtx {
    const char *name, *newName;
} RenameCtx;

/*
 * RenameChange --
 *	Renames a programmer, and the faults aimed at it.
 */
static int
RenameChange(SimBench *bench, BenchState *st, void *data, SimError *err)
{
    RenameCtx *r = data;
    SimProgrammer *p = FindProgrammer(st, r->name);
    size_t i;

    (void) bench;
    if (p == NULL) {
	return NoProgrammer(err, r->name);
    }
    if (strcmp(r->name, r->newName) == 0) {
	return 0;
    }
    if (FindProgrammer(st, r->newName) != NULL) {
	return SimFail(err, SIM_PROGRAMMER_EXISTS, "a programmer named '%s' "
		"is already connected", r->newName);
    }
    snprintf(p->name, sizeof(p->name), "%s", r->newName);
    for (i = 0; i < st->nFault; i++) {
	if (strcmp(st->fault[i].programmer, r->name) == 0) {
	    snprintf(st->fault[i].programmer, sizeof(st->fault[i].programmer),
		    "%s", r->newName);
	}
    }
    return 1;
}

/*
 * sim_programmer_rename --
 *	Renames a programmer.
 */
int
sim_programmer_rename(SimBench *bench, const char *name, const char *newName,
	SimError *err)
{
    RenameCtx r;

    if (!NameValid(newName)) {
	return SimFail(err, SIM_BAD_VALUE, "invalid programmer name '%.64s'",
		newName);
    }
    r.name = name;
    r.newName = newName;
    return ChangeState(bench, RenameChange, &r, err);
}

/*
 * sim_programmer_get --
 *	One programmer of the bench.
 */
int
sim_programmer_get(SimBench *bench, const char *name, SimProgrammer *out,
	SimError *err)
{
    BenchState *st = malloc(sizeof(*st));
    SimProgrammer *p;
    int rc;

    if (st == NULL) {
	return SimFail(err, SIM_FAIL, "no memory");
    }
    if ((rc = StateRead(bench, st, err)) == 0) {
	if ((p = FindProgrammer(st, name)) == NULL) {
	    rc = NoProgrammer(err, name);
	} else {
	    *out = *p;
	}
    }
    free(st);
    return rc;
}

/*
 * sim_programmer_list --
 *	Every programmer, in the order connected.
 */
int
sim_programmer_list(SimBench *bench, SimProgrammer **list, size_t *n,
	SimError *err)
{
    BenchState *st = malloc(sizeof(*st));
    int rc;

    *list = NULL;
    *n = 0;
    if (st == NULL) {
	return SimFail(err, SIM_FAIL, "no memory");
    }
    if ((rc = StateRead(bench, st, err)) == 0 && st->nPrg > 0) {
	if ((*list = malloc(st->nPrg * sizeof(**list))) == NULL) {
	    rc = SimFail(err, SIM_FAIL, "no memory");
	} else {
	    memcpy(*list, st->prg, st->nPrg * sizeof(**list));
	    *n = st->nPrg;
	}
    }
    free(st);
    return rc;
}

/*
 * sim_bench_board --
 *	The DSN of the device on a programmer's board.
 */
int
sim_bench_board(SimBench *bench, const char *prg, uint8_t dsn[PROTO_DSN],
	SimError *err)
{
    SimProgrammer p;

    if (sim_programmer_get(bench, prg, &p, err) != 0) {
	return -1;
    }
    if (!p.hasBoard) {
	return 0;
    }
    memcpy(dsn, p.dsn, PROTO_DSN);
    return 1;
}

/*
 *----------------------------------------------------------------------
 *
 * Boards.
 *
 *----------------------------------------------------------------------
 */

typedef struct InsertCtx {
    const char *prg, *die;
    const uint8_t *dsn;
    uint8_t *dsnOut;
    char *prgOut;
} InsertCtx;

/*
 * InsertChange --
 *	Puts a board on a programmer: a known device back, or a new one
 *	made by the factory.
 */
static int
InsertChange(SimBench *bench, BenchState *st, void *data, SimError *err)
{
    InsertCtx *in = data;
    SimProgrammer *p;
    uint8_t dsn[PROTO_DSN];
    char die[32], known[32];
    size_t i;
    int exists;

    if (in->prg != NULL) {
	if ((p = FindProgrammer(st, in->prg)) == NULL) {
	    return NoProgrammer(err, in->prg);
	}
    } else if (st->nPrg > 0) {
	p = &st->prg[0];
    } else {
	p = &st->prg[st->nPrg++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", DEFAULT_PROGRAMMER);
	snprintf(p->type, sizeof(p->type), "FlashPro4");
    }
    snprintf(die, sizeof(die), "%s", in->die != NULL ? in->die
	    : p->hasBoard ? p->die : DEFAULT_DIE);
    if (in->dsn != NULL) {
	memcpy(dsn, in->dsn, PROTO_DSN);
	if ((exists = sim_device_exists(bench, dsn, known, err)) < 0) {
	    return -1;
	}
	if (exists) {
	    char hex[2 * PROTO_DSN + 1];

	    if (in->die != NULL && strcmp(in->die, known) != 0) {
		sim_dsn_format(dsn, hex);
		return SimFail(err, SIM_BAD_VALUE, "device %s has die %s, not %s",
			hex, known, in->die);
	    }
	    snprintf(die, sizeof(die), "%s", known);
	}
    } else {
	exists = 0;
	do {
	    if (proto_random(dsn, PROTO_DSN) != 0) {
		return SimFail(err, SIM_FAIL, "random generator failed");
	    }
	} while ((exists = sim_device_exists(bench, dsn, known, err)) == 1);
	if (exists < 0) {
	    return -1;
	}
    }
    if (!exists && sim_device_make(bench, dsn, die, err) != 0) {
	return -1;
    }
    /* A device sits on one board: take it off any other programmer. */
    for (i = 0; i < st->nPrg; i++) {
	if (st->prg[i].hasBoard && memcmp(st->prg[i].dsn, dsn, PROTO_DSN) == 0) {
	    st->prg[i].hasBoard = 0;
	}
    }
    p->hasBoard = 1;
    memcpy(p->dsn, dsn, PROTO_DSN);
    snprintf(p->die, sizeof(p->die), "%s", die);
    memcpy(in->dsnOut, dsn, PROTO_DSN);
    if (in->prgOut != NULL) {
	snprintf(in->prgOut, SIM_NAME_MAX + 1, "%s", p->name);
    }
    return 1;
}

/*
 * sim_board_insert --
 *	Puts a board on a programmer (sim.h).
 */
int
sim_board_insert(SimBench *bench, const char *prg, const char *die,
	const uint8_t *dsn, uint8_t dsnOut[PROTO_DSN], char *prgOut,
	SimError *err)
{
    InsertCtx in;

    char canon[32];

    if (die != NULL) {
	if (sim_die_canon(die, canon) != 0) {
	    return SimFail(err, SIM_BAD_VALUE, "unknown die '%.40s'", die);
	}
	die = canon;
    }
    in.prg = prg;
    in.die = die;
    in.dsn = dsn;
    in.dsnOut = dsnOut;
    in.prgOut = prgOut;
    return ChangeState(bench, InsertChange, &in, err);
}

/*
 * PullChange --
 *	Takes a board off its programmer.
 */
static int
PullChange(SimBench *bench, BenchState *st, void *data, SimError *err)
{
    SimProgrammer *p = FindProgrammer(st, data);

    (void) bench;
    if (p == NULL) {
	return NoProgrammer(err, data);
    }
    if (!p->hasBoard) {
	return SimFail(err, SIM_NO_BOARD, "programmer '%s' carries no board",
		p->name);
    }
    p->hasBoard = 0;
    return 1;
}

/*
 * sim_board_pull --
 *	Takes a board off its programmer.
 */
int
sim_board_pull(SimBench *bench, const char *prg, SimError *err)
{
    return ChangeState(bench, PullChange, (void *) prg, err);
}

/*
 *----------------------------------------------------------------------
 *
 * Faults.
 *
 *----------------------------------------------------------------------
 */

/*
 * FaultSetChange --
 *	Arms a fault.
 */
static int
FaultSetChange(SimBench *bench, BenchState *st, void *data, SimError *err)
{
    const SimFault *f = data;

    (void) bench;
    if (f->programmer[0] != '\0' && FindProgrammer(st, f->programmer) == NULL) {
	return NoProgrammer(err, f->programmer);
    }
    if (st->nFault == MAX_FAULTS) {
	return SimFail(err, SIM_BAD_VALUE, "%d faults are set already",
		MAX_FAULTS);
    }
    st->fault[st->nFault++] = *f;
    return 1;
}

/*
 * sim_fault_set --
 *	Arms a fault (sim.h).
 */
int
sim_fault_set(SimBench *bench, const SimFault *fault, SimError *err)
{
    if (strcmp(fault->kind, "pull_board") != 0) {
	return SimFail(err, SIM_BAD_VALUE, "unknown fault '%.16s': pull_board",
		fault->kind);
    }
    if (sim_step_name(fault->step)[0] == '?') {
	return SimFail(err, SIM_BAD_VALUE, "unknown step: auth, code, program "
		"or coc");
    }
    return ChangeState(bench, FaultSetChange, (void *) fault, err);
}

/*
 * FaultClearChange --
 *	Disarms every fault.
 */
static int
FaultClearChange(SimBench *bench, BenchState *st, void *data, SimError *err)
{
    (void) bench;
    (void) data;
    (void) err;
    if (st->nFault == 0) {
	return 0;
    }
    st->nFault = 0;
    return 1;
}

/*
 * sim_fault_clear --
 *	Disarms every fault.
 */
int
sim_fault_clear(SimBench *bench, SimError *err)
{
    return ChangeState(bench, FaultClearChange, NULL, err);
}

/*
 * sim_fault_list --
 *	The armed faults.
 */
int
sim_fault_list(SimBench *bench, SimFault **list, size_t *n, SimError *err)
{
    BenchState *st = malloc(sizeof(*st));
    int rc;

    *list = NULL;
    *n = 0;
    if (st == NULL) {
	return SimFail(err, SIM_FAIL, "no memory");
    }
    if ((rc = StateRead(bench, st, err)) == 0 && st->nFault > 0) {
	if ((*list = malloc(st->nFault * sizeof(**list))) == NULL) {
	    rc = SimFail(err, SIM_FAIL, "no memory");
	} else {
	    memcpy(*list, st->fault, st->nFault * sizeof(**list));
	    *n = st->nFault;
	}
    }
    free(st);
    return rc;
}

typedef struct PointCtx {
    const char *prg;
    SimStep step;
    int fired;
} PointCtx;

/*
 * PointChange --
 *	Fires the first fault armed for this step and programmer: disarms
 *	it and pulls the board.
 */
static int
PointChange(SimBench *bench, BenchState *st, void *data, SimError *err)
{
    PointCtx *pc = data;
    SimProgrammer *p;
    size_t i;

    (void) bench;
    (void) err;
    for (i = 0; i < st->nFault; i++) {
	SimFault *f = &st->fault[i];

	if (f->step == pc->step && (f->programmer[0] == '\0'
		|| strcmp(f->programmer, pc->prg) == 0)) {
	    memmove(f, f + 1, (st->nFault - i - 1) * sizeof(*f));
	    st->nFault--;
	    if ((p = FindProgrammer(st, pc->prg)) != NULL) {
		p->hasBoard = 0;
	    }
	    pc->fired = 1;
	    return 1;
	}
    }
    return 0;
}

/*
 * sim_fault_point --
 *	A step of an action: fires a fault armed for it (sim.h).
 */
int
sim_fault_point(SimBench *bench, const char *prg, SimStep step, SimError *err)
{
    BenchState *st;
    PointCtx pc;
    size_t i;
    int armed = 0;

    /* Most steps find no fault: look before taking the bench's lock. */
    if ((st = malloc(sizeof(*st))) == NULL) {
	return SimFail(err, SIM_FAIL, "no memory");
    }
    if (StateRead(bench, st, err) != 0) {
	free(st);
	return -1;
    }
    for (i = 0; i < st->nFault; i++) {
	armed |= st->fault[i].step == step;
    }
    free(st);
    if (!armed) {
	return 0;
    }
    pc.prg = prg;
    pc.step = step;
    pc.fired = 0;
    if (ChangeState(bench, PointChange, &pc, err) != 0) {
	return -1;
    }
    return pc.fired;
}

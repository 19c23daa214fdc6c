/*
 * role_mhsm.h --
 *
 *	The Manufacturer HSM role (docs/PROTOCOL.md): what runs inside the
 *	M-HSM's security boundary.  It serves job requests (ticket ids and
 *	binding), loads the tickets of a job bound to it, checks devices'
 *	authenticity, keeps the overbuild counters, issues authorization codes
 *	(DFK, KFP, KFPE key modes), collects CoCs, signs job statuses, and on
 *	completion or termination removes the tickets and signs an end
 *	certifier for each.
 *
 *	State lives in the HSM (role_common.h): the identity keys in firmware
 *	key store ROLE_FW_STORE_MHSM, every record in firmware blobs whose
 *	names start with "mhsm." (docs/FORMATS.md, "M-HSM records").  Counter
 *	updates are read-modify-writes inside hsm_fw_transaction, each blob
 *	write durable and rollback-protected before the call goes on, so two
 *	processes (two stations) sharing one M-HSM never reuse a code and
 *	never go below zero.
 *
 *	A U-HSM's "M-HSM function" (test execution) is this role in the
 *	U-HSM's own state directory, provisioned with the U-HSM's UUID and
 *	kind ROLE_MHSM_KIND_UHSM_FUNCTION.
 *
 *	Conventions: functions return 0 on success, or a negative
 *	RoleMhsmFail saying which condition refused the call, with a sentence
 *	in err.  Nothing is half done: a refusal leaves every record as it was.
 */

#ifndef SPPS_ROLE_MHSM_H
#define SPPS_ROLE_MHSM_H

#include "roles/role_common.h"

/* Conditions of a refusal (negative return values). */
typedef enum RoleMhsmFail {
    ROLE_MHSM_FAIL = -1,		/* HSM or I/O failure, out of memory */
    ROLE_MHSM_CORRUPT = -2,		/* a file damaged, forged, or unreadable */
    ROLE_MHSM_WRONG_HSM = -3,		/* a request or job for another M-HSM */
    ROLE_MHSM_REPLAYED = -4,		/* a request served before */
    ROLE_MHSM_UNKNOWN_REQUEST = -5,	/* a job answering no request served here */
    ROLE_MHSM_ENDED = -6,		/* tickets completed or terminated */
    ROLE_MHSM_EXHAUSTED = -7,		/* a ticket with no code left */
    ROLE_MHSM_NOT_LOADED = -8,		/* a ticket this M-HSM does not hold */
    ROLE_MHSM_AUTH = -9,		/* device authenticity check failed */
    ROLE_MHSM_DIE = -10,		/* a device of another die than the job's */
    ROLE_MHSM_KEY_MODE = -11,		/* key mode the device cannot use */
    ROLE_MHSM_COC = -12,		/* a CoC or receipt refused */
    ROLE_MHSM_INCOMPLETE = -13,		/* completion while codes are left */
    ROLE_MHSM_UUID = -14,		/* provisioned with another UUID or kind */
    ROLE_MHSM_NOT_PROVISIONED = -15	/* no M-HSM in this HSM yet */
} RoleMhsmFail;

/* role_mhsm_fail_name -- "CORRUPT", "WRONG_HSM", ... (for error codes). */
const char *role_mhsm_fail_name(int fail);

/* What an M-HSM is. */
#define ROLE_MHSM_KIND_STANDALONE 0	/* a Manufacturer HSM */
#define ROLE_MHSM_KIND_UHSM_FUNCTION 1	/* the M-HSM function of a U-HSM */

typedef struct RoleMhsm RoleMhsm;

/*
 * RoleMhsmVendor --
 *	The silicon vendor as provisioning sees it (the role does not call
 *	the simulated factory itself; the caller wraps sim_factory.h):
 *	  root         the vendor root public key, pinned at provisioning;
 *	  certify      fills a certificate's serial, issued and signature;
 *	  sealDfkKey   the DFK-DB key sealed to the sealing key of the M-HSM
 *	               certificate given (proto_seal_p384, purpose "dfk-db").
 */
typedef struct RoleMhsmVendor {
    uint8_t root[PROTO_P384_PUB];
    int (*certify)(void *ctx, ProtoCert *cert, ProtoError *err);
    int (*sealDfkKey)(void *ctx, const ProtoCert *mhsmCert, uint8_t **sealed,
	    size_t *sealedLen, ProtoError *err);
    void *ctx;
} RoleMhsmVendor;

/*
 * role_mhsm_provision --
 *	Makes the HSM an M-HSM with this UUID (any form proto_uuid_canon
 *	takes) and kind, if it is not one yet: identity signing key and
 *	sealing key (P-384) in firmware key store ROLE_FW_STORE_MHSM, both
 *	certified by the vendor in one certificate (checked against the
 *	root), the root pinned, and the DFK-DB key unsealed inside the HSM.
 *	*created says whether it was made now (for the log).  An HSM already
 *	provisioned with this UUID and kind is left alone; another UUID or
 *	kind is ROLE_MHSM_UUID.  Safe against a second process doing the
 *	same at the same time (one transaction of the HSM).
 */
int role_mhsm_provision(RoleHsm *hsm, const char *uuid, int kind,
	const RoleMhsmVendor *vendor, int *created, ProtoError *err);

/* role_mhsm_provisioned -- 1 and the canonical UUID and kind if the HSM is
 * an M-HSM, 0 if not, -1 on error. */
int role_mhsm_provisioned(RoleHsm *hsm, char uuid[41], int *kind,
	ProtoError *err);

/*
 * role_mhsm_open --
 *	Opens the M-HSM of a provisioned HSM.  uuid (may be NULL: any) must
 *	be the one it was provisioned with (compared by value).  The RoleMhsm
 *	borrows hsm: close it before the RoleHsm.
 */
int role_mhsm_open(RoleHsm *hsm, const char *uuid, RoleMhsm **mhsm,
	ProtoError *err);
void role_mhsm_close(RoleMhsm *mhsm);

/* Identity: canonical UUID, kind, and the certificate issued at provisioning. */
const char *role_mhsm_uuid(const RoleMhsm *mhsm);
int role_mhsm_kind(const RoleMhsm *mhsm);
const ProtoCert *role_mhsm_cert(const RoleMhsm *mhsm);

/* ------------------------------------------------------------------ */
/* Job request -> reply                                                 */
/* ------------------------------------------------------------------ */

/*
 * role_mhsm_serve_request --
 *	Checks a job request file image (envelope, U-HSM certificate against
 *	the pinned root, signature, that it names this M-HSM, that it was
 *	never served), draws one ticket id per ticket and a binding nonce,
 *	records the served request durably, and returns the signed reply file
 *	image (malloc'ed).  request (optional) receives the decoded request
 *	(free with proto_request_free), reply (optional) the decoded reply
 *	(proto_reply_free).  what names the file in messages.
 */
int role_mhsm_serve_request(RoleMhsm *mhsm, const uint8_t *image, size_t len,
	const char *what, uint8_t **replyImage, size_t *replyLen,
	ProtoRequest *request, ProtoReply *reply, ProtoError *err);

/* ------------------------------------------------------------------ */
/* Jobs                                                                 */
/* ------------------------------------------------------------------ */

/*
 * role_mhsm_check_job --
 *	Checks a job file image (envelope, U-HSM certificate and signature,
 *	bound to this M-HSM, answering a request served here with the same
 *	binding nonce, ticket ids and U-HSM) and decodes it into job (free
 *	with proto_job_free).  Loads nothing.
 */
int role_mhsm_check_job(RoleMhsm *mhsm, const uint8_t *image, size_t len,
	const char *what, ProtoJob *job, ProtoError *err);

/*
 * role_mhsm_load_job --
 *	role_mhsm_check_job, then unseals the ticket secrets inside the HSM
 *	and, in one transaction, creates the tickets this M-HSM does not hold
 *	yet.  Tickets already held (a second station, a lost project folder)
 *	are shared: their counters are not touched.  A job any of whose
 *	tickets has ended is refused (ROLE_MHSM_ENDED).  *shared counts the
 *	tickets that were already held.
 */
int role_mhsm_load_job(RoleMhsm *mhsm, const uint8_t *image, size_t len,
	const char *what, ProtoJob *job, size_t *shared, ProtoError *err);

/* ------------------------------------------------------------------ */
/* Programming a device                                                 */
/* ------------------------------------------------------------------ */

/*
 * role_mhsm_challenge --
 *	A fresh 32-byte challenge for a device's authenticity check, from the
 *	HSM's random generator, remembered by this RoleMhsm until it is
 *	answered (at most ROLE_MHSM_MAX_SESSIONS outstanding; the oldest is
 *	forgotten first).
 */
#define ROLE_MHSM_MAX_SESSIONS 64
int role_mhsm_challenge(RoleMhsm *mhsm, uint8_t challenge[PROTO_NONCE],
	ProtoError *err);

/* What an authenticity check established (public values only). */
typedef struct RoleMhsmDevice {
    uint8_t dsn[PROTO_DSN];
    char die[32];
    int hasKfp;				/* proved with its KFP certificate */
} RoleMhsmDevice;

/*
 * role_mhsm_authenticate --
 *	Checks a device's answer (proto_device.h, ProtoDevAuth) to the
 *	challenge: KFP certificate against the pinned root and signature, or
 *	the DFK-mode CMAC recomputed from FK; and that its die is die (the
 *	job's device).  On success the session is kept for
 *	role_mhsm_issue_code; the challenge cannot be answered twice.
 */
int role_mhsm_authenticate(RoleMhsm *mhsm, const uint8_t challenge[PROTO_NONCE],
	const uint8_t *answer, size_t answerLen, const char *die,
	RoleMhsmDevice *device, ProtoError *err);

/* What an issued code is, for the log. */
typedef struct RoleMhsmCode {
    uint8_t codeId[PROTO_CODE_ID];
    char keyMode[8];			/* DFK, KFP, KFPE */
    int reused;				/* given under this DSN's pending reservation */
    int64_t maxDevices, completed, pending;	/* after the reservation */
} RoleMhsmCode;

/*
 * role_mhsm_issue_code --
 *	For the device authenticated under challenge: checks the ticket
 *	(held, not ended, for this action), reserves a device durably
 *	(completed + pending < max, unlimited never refuses, or this DSN's
 *	pending reservation of the ticket is reused), and only then builds the
 *	authorization code encrypted to that device in the ticket's key mode
 *	(malloc'ed; proto_device.h).  At zero: ROLE_MHSM_EXHAUSTED naming the
 *	ticket.  The session is used up either way.
 */
int role_mhsm_issue_code(RoleMhsm *mhsm, const uint8_t challenge[PROTO_NONCE],
	const uint8_t ticketId[PROTO_TICKET_ID], uint8_t **code, size_t *codeLen,
	RoleMhsmCode *info, ProtoError *err);

/*
 * role_mhsm_confirm --
 *	Takes a device's CoC (proto_device.h) for a ticket: it must answer a
 *	pending reservation (DSN and code id), carry the ticket's action and
 *	design digest, and its MAC must verify under the ticket's KIP.  The
 *	reservation becomes a completed device and the CoC is kept, durably.
 *	info (optional) gets the counts after.
 */
int role_mhsm_confirm(RoleMhsm *mhsm, const uint8_t ticketId[PROTO_TICKET_ID],
	const uint8_t *coc, size_t cocLen, RoleMhsmCode *info, ProtoError *err);

/* ------------------------------------------------------------------ */
/* Status, end of job, ticket administration                            */
/* ------------------------------------------------------------------ */

/*
 * role_mhsm_status --
 *	The status of a job's tickets (checked with role_mhsm_check_job),
 *	signed by the identity key with the next sequence number.  mode:
 *	  ROLE_MHSM_STATUS     an intermediate status with the CoCs so far;
 *	  ROLE_MHSM_COMPLETE   removes the tickets if every one is used up
 *	                       (ROLE_MHSM_INCOMPLETE otherwise, naming one);
 *	  ROLE_MHSM_TERMINATE  removes them whatever is left.
 *	Removal, in one transaction: each ticket's secrets are erased, an end
 *	certifier is signed and kept with its counts as a tombstone (so the
 *	job can never be loaded again), and its CoCs stay archived.  A job
 *	whose tickets have all ended already gives its end status again (the
 *	same certifiers).  image (optional) receives the status file image;
 *	status (optional) the decoded content (proto_status_free).
 */
#define ROLE_MHSM_STATUS 0
#define ROLE_MHSM_COMPLETE 1
#define ROLE_MHSM_TERMINATE 2
int role_mhsm_status(RoleMhsm *mhsm, const ProtoJob *job, int mode,
	uint8_t **image, size_t *len, ProtoStatus *status, ProtoError *err);

/* One ticket held by the M-HSM (list_all_hsm_tickets). */
typedef struct RoleMhsmTicket {
    uint8_t id[PROTO_TICKET_ID];
    char *name, *device, *action, *jobName;
    int ended;				/* 0 live, 1 completed/terminated */
    int64_t maxDevices, completed, pending;
} RoleMhsmTicket;

/* Every ticket the M-HSM holds (live and ended), sorted by id. */
int role_mhsm_list_tickets(RoleMhsm *mhsm, RoleMhsmTicket **tickets, size_t *n,
	ProtoError *err);
void role_mhsm_tickets_free(RoleMhsmTicket *tickets, size_t n);

/*
 * role_mhsm_remove_tickets --
 *	Terminates the live tickets named (remove_hsm_tickets): as
 *	ROLE_MHSM_TERMINATE, ticket by ticket, so that their job can never
 *	run again and its end status can still be exported.  A ticket id the
 *	M-HSM does not hold is ROLE_MHSM_NOT_LOADED (nothing removed);
 *	tickets already ended are left as they are.  *removed counts those
 *	removed now.
 */
int role_mhsm_remove_tickets(RoleMhsm *mhsm, const uint8_t *ids, size_t n,
	size_t *removed, ProtoError *err);

/* The archive folder of ended tickets: <state dir>/archive (malloc'ed). */
char *role_mhsm_archive_dir(const RoleMhsm *mhsm);

/*
 * role_mhsm_archive --
 *	Writes a status file image into the archive folder (role_mhsm_status
 *	does it for every end status; get_job_status -archive for an
 *	intermediate one).  *path (optional) gets the file's path (malloc'ed).
 */
int role_mhsm_archive(RoleMhsm *mhsm, const ProtoStatus *status,
	const uint8_t *image, size_t len, char **path, ProtoError *err);

#endif /* SPPS_ROLE_MHSM_H */

/*
 * proto_jm.h --
 *
 *	Job Manager's own files (docs/FORMATS.md, sections "JDC", "Keyset",
 *	"Job Manager project", "Job Manager settings"): their in-memory form,
 *	their TLV encodings and their envelopes (proto.h).  Plain C: no Tcl,
 *	no HSM.  What needs a key (the keyset's secrets, the project's MAC
 *	key) is computed by the U-HSM role (roles/role_uhsm.h) or handed in by
 *	the caller.
 *
 *	Conventions are proto.h's: 0 on success, -1 with a sentence in the
 *	ProtoError; decoded structures own their memory (malloc), freed by
 *	their _free, which also cleanses what may be secret.
 */

#ifndef SPPS_PROTO_JM_H
#define SPPS_PROTO_JM_H

#include "proto.h"

/* Caps on what a reader accepts (a hostile file cannot make us allocate
 * without bound). */
#define JM_MAX_JDC        (256u * 1024 * 1024)	/* a JDC, decompressed */
#define JM_MAX_PROJECT    (1024u * 1024 * 1024)	/* a project, decompressed */
#define JM_MAX_KEYSET     (64u * 1024)
#define JM_MAX_SETTINGS   (64u * 1024)
#define JM_MAX_CLIENTS    1024		/* eNVM or sNVM clients of a design */

/* Device features a bitstream programs (and a JDC provides). */
#define JM_FEATURE_SECURITY 1
#define JM_FEATURE_FABRIC   2
#define JM_FEATURE_ENVM     4
#define JM_FEATURE_SNVM     8

/* "SECURITY FABRIC ENVM SNVM" <-> bits.  jm_features_parse accepts a
 * Tcl-like list of words separated by spaces, commas or '|', any case;
 * returns -1 naming an unknown word in err. */
int jm_features_parse(const char *text, int *bits, ProtoError *err);
void jm_features_format(int bits, char *out, size_t outLen);

/* ------------------------------------------------------------------ */
/* JDC: the design hand-off (Libero's "Export Job Manager Data")        */
/* ------------------------------------------------------------------ */

typedef struct JmNameValue {
    char *name, *value;
} JmNameValue;

/* An eNVM or sNVM client: a named region of the design with a capacity
 * and its initial content (len <= size). */
typedef struct JmClient {
    char *name;
    uint64_t size;
    uint8_t *data;
    size_t len;
} JmClient;

typedef struct JmJdc {
    char *family;		/* SmartFusion2, IGLOO2, PolarFire, PolarFire SoC */
    char *die;			/* M2S090TS, MPF300TS, ... */
    char *designName;
    char *tool;			/* what wrote it: "spps::jdc 0.1" */
    uint8_t *fabric;		/* fabric configuration data; NULL if none */
    size_t fabricLen;
    size_t nEnvm;
    JmClient *envm;
    size_t nSnvm;
    JmClient *snvm;
    size_t nSecurity;
    JmNameValue *security;	/* security settings (SPM), name -> value */
} JmJdc;

/* The components a JDC provides (JM_FEATURE_* bits). */
int jm_jdc_components(const JmJdc *jdc);

int jm_jdc_encode(const JmJdc *jdc, ProtoBuf *out);
int jm_jdc_decode(const uint8_t *body, size_t len, JmJdc *jdc, ProtoError *err);
/* The file: envelope JDC, DIGEST (integrity: it comes from the designer's
 * tool, which holds no key of ours), zlib.  *image is malloc'ed. */
int jm_jdc_write(const JmJdc *jdc, uint8_t **image, size_t *len, ProtoError *err);
int jm_jdc_read(const uint8_t *image, size_t len, const char *what, JmJdc *jdc,
	ProtoError *err);
void jm_jdc_free(JmJdc *jdc);

/*
 * jm_generate_content --
 *	len bytes of reproducible stand-in design data (fabric, eNVM
 *	content) determined by seed and label: AES-256-CTR keystream under
 *	SHA-384("spps jdc content v1" || label || 0 || seed).  Not a secret:
 *	it stands in for a design, the same on every machine.
 */
int jm_generate_content(const char *seed, const char *label, uint8_t *out,
	size_t len, ProtoError *err);

/* ------------------------------------------------------------------ */
/* Keyset                                                               */
/* ------------------------------------------------------------------ */

#define JM_KEYSET_ID 16

/* The keys a keyset can hold, in their canonical order: KIP, UEK1, UEK2,
 * UEK3, UPK1, UPK2, DPK, then UEK1_BASE ... DPK_BASE.  NULL-terminated. */
extern const char *const jm_key_names[];
/* The six user keys that have base keys (UEK1 ... DPK). */
extern const char *const jm_user_keys[];
/* Index of a key name (any case) in jm_key_names, or -1. */
int jm_key_index(const char *name);

/*
 * JmKeyset --
 *	The file's fields.  Everything but the two ciphertexts is the
 *	keyset's public header; its encoding (jm_keyset_header) is the AAD of
 *	both, so no field can be changed without the U-HSM noticing.
 *	  wrappedTicketKey: role_wrap under the U-HSM master key;
 *	  sealedKeys: AES-256-GCM under HKDF(ticket key, id, "spps keyset v1")
 *	              of the key record (jm_keys_encode).
 */
typedef struct JmKeyset {
    uint8_t id[JM_KEYSET_ID];
    char uhsmUuid[41];
    char masterUuid[41];
    uint64_t created;
    char *origin;		/* "random", "derived from 'x'", "imported" ... */
    size_t nNames;
    char **names;		/* the keys it holds, canonical order */
    uint8_t *wrappedTicketKey;
    size_t wrappedLen;
    uint8_t *sealedKeys;
    size_t sealedLen;
} JmKeyset;

int jm_keyset_header(const JmKeyset *ks, ProtoBuf *out);
int jm_keyset_write(const JmKeyset *ks, uint8_t **image, size_t *len,
	ProtoError *err);
int jm_keyset_read(const uint8_t *image, size_t len, const char *what,
	JmKeyset *ks, ProtoError *err);
void jm_keyset_free(JmKeyset *ks);

/* The secret record inside a keyset: name -> 32-byte value.  Decoding
 * refuses unknown names, duplicates and values of the wrong size. */
int jm_keys_encode(const ProtoNamedBytes *keys, size_t n, ProtoBuf *out);
int jm_keys_decode(const uint8_t *body, size_t len, ProtoNamedBytes **keys,
	size_t *n, ProtoError *err);
void jm_keys_free(ProtoNamedBytes *keys, size_t n);	/* cleanses */

/* ------------------------------------------------------------------ */
/* Job Manager project (.jprj)                                          */
/* ------------------------------------------------------------------ */

/* New content for an eNVM or sNVM client (set_envm_update). */
typedef struct JmUpdate {
    char *client;
    char *source;		/* the file it came from (for listings) */
    uint8_t *data;
    size_t len;
} JmUpdate;

/* A bitstream defined by init_bitstream. */
typedef struct JmBitstreamDef {
    char *name;
    char *type;			/* MASTER UEK1 UEK2 UEK3 TRUSTED_FACILITY */
    int features;		/* JM_FEATURE_* */
    char *protocol;		/* "AUTH_CODE" or "" */
    char *keyMode;		/* DFK KFP KFPE, or "" */
    int generateCoc;
    size_t nEnvmClients;	/* 0: every eNVM client of the design */
    char **envmClients;
    size_t nPerDevice;		/* keys the M-HSM derives per device */
    char **perDevice;
} JmBitstreamDef;

/* A Programming Data entry: a JDC copied into the project. */
typedef struct JmProgData {
    char *name;
    char *jdcSource;		/* the path it was imported from */
    uint8_t jdcDigest[PROTO_DIGEST];	/* SHA-384 of the JDC file */
    uint8_t *jdc;		/* the JDC file image */
    size_t jdcLen;
    char *keysetName;		/* NULL: non-HSM flow */
    uint8_t *keyset;		/* the keyset file image (keys wrapped) */
    size_t keysetLen;
    size_t nEnvmUpdates;
    JmUpdate *envmUpdates;
    size_t nSnvmUpdates;
    JmUpdate *snvmUpdates;
    size_t nBitstreams;
    JmBitstreamDef *bitstreams;
} JmProgData;

typedef struct JmDevice {
    char *name;
    int64_t hwLocation;
    char *dataName, *bitstreamName;
} JmDevice;

typedef struct JmTicket {
    char *name, *device, *action;
    int64_t maxDevices;		/* >= 1 or PROTO_UNLIMITED */
    int hasId;			/* set by the reply */
    uint8_t id[PROTO_TICKET_ID];
} JmTicket;

/* A bitstream as exported in a task's job: what validates CoCs later. */
typedef struct JmExportedBitstream {
    char *dataName, *bitstreamName;
    uint8_t designDigest[PROTO_DIGEST];
    uint8_t *wrappedKip;	/* KIP wrapped under the U-HSM master key */
    size_t wrappedKipLen;
} JmExportedBitstream;

/* A status file import_job_status read, kept as read. */
typedef struct JmStatusRecord {
    char *file;
    uint64_t imported;
    uint8_t digest[PROTO_DIGEST];	/* SHA-384 of the file */
    uint64_t sequence;
    int isEnd;
    int valid;			/* everything in it passed validation */
    char *summary;		/* one line: what was found */
    uint8_t *image;		/* the file */
    size_t imageLen;
} JmStatusRecord;

typedef enum JmTaskState {
    JM_TASK_CREATED = 0,	/* tickets may still change */
    JM_TASK_REQUESTED = 1,	/* a request was written */
    JM_TASK_BOUND = 2,		/* its reply was imported */
    JM_TASK_EXPORTED = 3	/* its job was exported */
} JmTaskState;

typedef struct JmTask {
    char *name;
    int internal;		/* -cm_request_type INTERNAL */
    JmTaskState state;
    size_t nTickets;
    JmTicket *tickets;
    /* request */
    uint8_t requestDigest[PROTO_DIGEST];
    char mhsmUuid[41];		/* the M-HSM the request names */
    char *requestFile;
    uint64_t requested;
    /* reply */
    uint8_t replyDigest[PROTO_DIGEST];
    ProtoCert mhsmCert;
    uint8_t bindingNonce[PROTO_NONCE];
    uint64_t replied;
    /* export */
    char *jobFile;
    uint64_t exported;
    uint8_t jobDigest[PROTO_DIGEST];
    size_t nExported;
    JmExportedBitstream *exportedBs;
    /* statuses */
    size_t nStatuses;
    JmStatusRecord *statuses;
} JmTask;

typedef struct JmJob {
    char *name;
    char *type;			/* FPExpress or IHP */
    size_t nDevices;
    JmDevice *devices;
    size_t nTasks;
    JmTask *tasks;
} JmJob;

typedef struct JmProject {
    char *name;
    uint64_t created;
    char uhsmUuid[41];		/* the U-HSM whose key authenticates it */
    size_t nData;
    JmProgData *data;
    size_t nJobs;
    JmJob *jobs;
} JmProject;

int jm_project_encode(const JmProject *p, ProtoBuf *out);
int jm_project_decode(const uint8_t *body, size_t len, JmProject *p,
	ProtoError *err);
/* The file: envelope JM_PROJECT, MAC under macKey (a U-HSM key), zlib. */
int jm_project_write(const JmProject *p, const uint8_t macKey[32],
	uint8_t **image, size_t *len, ProtoError *err);
int jm_project_read(const uint8_t *image, size_t len, const char *what,
	const uint8_t macKey[32], JmProject *p, ProtoError *err);
void jm_project_free(JmProject *p);
/* A deep copy (through the encoding): commands change a copy and keep it
 * only when everything succeeded. */
int jm_project_copy(const JmProject *p, JmProject *copy, ProtoError *err);

/* Finders: NULL if absent. */
JmProgData *jm_find_data(const JmProject *p, const char *name);
JmBitstreamDef *jm_find_bitstream(const JmProgData *d, const char *name);
JmJob *jm_find_job(const JmProject *p, const char *name);
JmDevice *jm_find_device(const JmJob *j, const char *name);
JmTask *jm_find_task(const JmJob *j, const char *name);
JmTicket *jm_find_ticket(const JmTask *t, const char *name);

/* Element destructors (for callers that build or remove elements). */
void jm_update_free(JmUpdate *u);
void jm_bitstream_def_free(JmBitstreamDef *b);
void jm_prog_data_free(JmProgData *d);
void jm_device_free(JmDevice *d);
void jm_ticket_free(JmTicket *t);
void jm_task_free(JmTask *t);
void jm_job_free(JmJob *j);
void jm_status_record_free(JmStatusRecord *s);
void jm_exported_free(JmExportedBitstream *e);

/* ------------------------------------------------------------------ */
/* Job Manager settings (set_hsm_params)                                */
/* ------------------------------------------------------------------ */

typedef struct JmSettings {
    char *server;		/* -hsm_server_name */
    char uhsmUuid[41];		/* canonical; "" if not set */
    char masterUuid[41];
    char mhsmUuid[41];
    char *keysetDir;		/* absolute, or NULL */
    uint64_t updated;
} JmSettings;

/*
 * The file is two envelopes: an outer SETTINGS/DIGEST one whose body names
 * the server and holds the inner one, a SETTINGS/MAC envelope under a key
 * of that server's U-HSM.  jm_settings_server reads the outer one (to
 * know which U-HSM to ask for the key); jm_settings_read checks both.
 */
int jm_settings_write(const JmSettings *s, const uint8_t macKey[32],
	uint8_t **image, size_t *len, ProtoError *err);
int jm_settings_server(const uint8_t *image, size_t len, const char *what,
	char **server, ProtoError *err);
int jm_settings_read(const uint8_t *image, size_t len, const char *what,
	const uint8_t macKey[32], JmSettings *s, ProtoError *err);
void jm_settings_free(JmSettings *s);

/* jm_strdup -- malloc'ed copy (NULL stays NULL); NULL on allocation failure. */
char *jm_strdup(const char *s);

#endif /* SPPS_PROTO_JM_H */

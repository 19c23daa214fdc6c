/*
 * proto.h --
 *
 *	The SPPS protocol core: the bytes of every file spps writes and the
 *	cryptographic constructions shared by the parties (docs/PROTOCOL.md,
 *	docs/FORMATS.md).  Plain C on OpenSSL 3 and zlib: no Tcl, no HSM
 *	engine.  Whatever needs a private key (signatures, unsealing) takes a
 *	callback, so the key stays in the HSM role that owns it.
 *
 *	Parts:
 *	  proto_tlv.c        TLV records: ProtoBuf (writer), ProtoReader
 *	  proto_container.c  the file envelope: magic, version, type, auth
 *	  proto_crypto.c     seal/open to a P-384 key, ECDSA P-384 verify,
 *	                     CoC MAC, HKDF labels, digests
 *	  proto_cert.c       certificates issued by the vendor root
 *	  proto_msg.c        request, reply, job, status, bitstream, ticket
 *	                     secrets, auth codes, CoCs, end certifiers
 *
 *	Conventions: functions return 0 on success, -1 on failure with a
 *	sentence in the caller's ProtoError saying what and where ("job file:
 *	ticket 2: field 'action' is missing").  Decoders check every length
 *	against what is left before using it and never trust a size field.
 *	Decoded structures own their memory: free them with their _free.
 */

#ifndef SPPS_PROTO_H
#define SPPS_PROTO_H

#include <stddef.h>
#include <stdint.h>

typedef struct ProtoError {
    char msg[512];
} ProtoError;

/* Sizes of the fixed-size fields of the protocol. */
#define PROTO_P384_PUB     96	/* P-384 public key x || y */
#define PROTO_P384_SIG     96	/* ECDSA P-384 signature r || s */
#define PROTO_DIGEST       48	/* SHA-384 */
#define PROTO_NONCE        32
#define PROTO_TICKET_ID    20	/* shown as 40 hex digits */
#define PROTO_CODE_ID      16
#define PROTO_KEY          32	/* AES-256 keys: KIP, user keys, base keys */
#define PROTO_DSN          16	/* device serial number, 32 hex digits */
#define PROTO_MAC          16	/* AES-CMAC tags (CoC) */

/* A sane bound for proto_container_read's maxBody: bitstreams are tens
 * of MB; nothing spps writes comes near this. */
#define PROTO_MAX_BODY     (256u * 1024 * 1024)

/* proto_clear_free -- cleanses len bytes at p, then free(p).  Everything
 * the protocol core returns is malloc'ed: free() or this. */
void proto_clear_free(void *p, size_t len);

/* ------------------------------------------------------------------ */
/* TLV records (proto_tlv.c)                                            */
/* ------------------------------------------------------------------ */

/*
 * A record is a sequence of items: tag (u16, big-endian), length (u32,
 * big-endian), value.  A value may itself be a record (nested).  Unknown
 * tags are skipped by readers, so newer writers stay readable.
 */

typedef struct ProtoBuf {
    uint8_t *data;
    size_t len, cap;
    int failed;			/* set on allocation failure; sticky */
} ProtoBuf;

void proto_buf_init(ProtoBuf *b);
void proto_buf_free(ProtoBuf *b);	/* cleanses before freeing */
void proto_put_bytes(ProtoBuf *b, uint16_t tag, const void *val, size_t len);
void proto_put_u64(ProtoBuf *b, uint16_t tag, uint64_t v);	/* 8 bytes */
void proto_put_i64(ProtoBuf *b, uint16_t tag, int64_t v);
void proto_put_str(ProtoBuf *b, uint16_t tag, const char *s);	/* no NUL */
/* Nested records: mark = proto_begin(b, tag); ...puts...; proto_end(b, mark). */
size_t proto_begin(ProtoBuf *b, uint16_t tag);
void proto_end(ProtoBuf *b, size_t mark);

typedef struct ProtoItem {
    uint16_t tag;
    const uint8_t *val;
    uint32_t len;
} ProtoItem;

typedef struct ProtoReader {
    const uint8_t *p, *end;
} ProtoReader;

void proto_reader_init(ProtoReader *r, const uint8_t *data, size_t len);
/* 1: an item; 0: end of the record; -1: malformed (length past the end). */
int proto_next(ProtoReader *r, ProtoItem *item);
/* The first item with tag: 1 found, 0 absent, -1 malformed record. */
int proto_find(const uint8_t *data, size_t len, uint16_t tag, ProtoItem *item);
/* Value converters: 0 or -1 (wrong length, embedded NUL, bad UTF-8...). */
int proto_item_u64(const ProtoItem *item, uint64_t *v);
int proto_item_i64(const ProtoItem *item, int64_t *v);
int proto_item_str(const ProtoItem *item, char **s);	/* malloc'ed */
int proto_item_fixed(const ProtoItem *item, void *out, size_t len);

/* ------------------------------------------------------------------ */
/* The file envelope (proto_container.c)                                */
/* ------------------------------------------------------------------ */

typedef enum ProtoFileType {
    PROTO_FILE_JDC = 1,		/* job data container (design hand-off) */
    PROTO_FILE_KEYSET = 2,	/* keyset, keys wrapped under a U-HSM master key */
    PROTO_FILE_JM_PROJECT = 3,	/* Job Manager project (.jprj) */
    PROTO_FILE_REQUEST = 4,	/* job request (.req) */
    PROTO_FILE_REPLY = 5,	/* job reply (.rep) */
    PROTO_FILE_JOB = 6,		/* HSM programming job (.job) */
    PROTO_FILE_STATUS = 7,	/* job status / job end status */
    PROTO_FILE_FPE_PROJECT = 8,	/* FlashPro Express job project (.pro) */
    PROTO_FILE_BITSTREAM = 9,	/* encrypted programming data (.pdb) */
    PROTO_FILE_SETTINGS = 10,	/* a tool's saved parameters */
    PROTO_FILE_BENCH = 11,	/* simulated bench state */
    PROTO_FILE_CERT = 12	/* a certificate on its own (vendor root) */
} ProtoFileType;

typedef enum ProtoAuth {
    PROTO_AUTH_DIGEST = 1,	/* SHA-384: integrity against corruption only */
    PROTO_AUTH_MAC = 2,		/* HMAC-SHA-384 under a key of the writer's HSM */
    PROTO_AUTH_SIGNATURE = 3	/* ECDSA P-384/SHA-384 by an HSM identity key */
} ProtoAuth;

/* Signs data (SHA-384 then ECDSA P-384) with a key the caller holds in
 * its HSM: returns 0 and r || s, or -1 with err filled. */
typedef int (*ProtoSignFn)(void *ctx, const uint8_t *data, size_t len,
	uint8_t sig[PROTO_P384_SIG], ProtoError *err);

/*
 * proto_container_write --
 *	Wraps body (a TLV record) into a file image: header, body (zlib-
 *	compressed when compress is set), and the authenticator:
 *	  DIGEST:    SHA-384 of header and stored body;
 *	  MAC:       HMAC-SHA-384 of the same, under macKey (32 bytes);
 *	  SIGNATURE: signFn over the same.
 *	*out is malloc'ed.
 */
int proto_container_write(ProtoFileType type, ProtoAuth auth, int compress,
	const uint8_t *body, size_t bodyLen, const uint8_t *macKey,
	ProtoSignFn signFn, void *signCtx, uint8_t **out, size_t *outLen,
	ProtoError *err);

/*
 * proto_container_read --
 *	Checks a file image: magic, version, type == expected, sizes, then
 *	the authenticator (DIGEST and MAC are verified here, MAC with macKey;
 *	for SIGNATURE the caller verifies *signature over *signedPart with the
 *	signer's key, found in the body, using proto_verify_p384).  On
 *	success *body is the (decompressed) TLV record, malloc'ed; nothing is
 *	returned from a file that fails a check.  Decompression is capped at
 *	maxBody bytes.  what names the file in messages ("job file
 *	'./MyProgJob.job'").
 *
 *	expected 0 accepts any type (c->type says which).  With macKey set,
 *	only a MACed file is accepted (no downgrade to a digest anyone can
 *	recompute).  Without it, a DIGEST or SIGNATURE file is accepted: a
 *	caller that needs a signature must check c->auth == SIGNATURE and
 *	verify it (the proto_<msg>_read functions do both).  c->signedPart
 *	points into image: keep image while using it.
 */
typedef struct ProtoContainer {
    ProtoFileType type;
    ProtoAuth auth;
    uint8_t *body;		/* malloc'ed TLV record */
    size_t bodyLen;
    const uint8_t *signedPart;	/* points into the image: header + stored body */
    size_t signedLen;
    uint8_t signature[PROTO_P384_SIG];
} ProtoContainer;

int proto_container_read(const uint8_t *image, size_t len,
	ProtoFileType expected, const uint8_t *macKey, size_t maxBody,
	const char *what, ProtoContainer *c, ProtoError *err);
void proto_container_free(ProtoContainer *c);

/* proto_file_type_name -- "job", "job request", ... for messages. */
const char *proto_file_type_name(ProtoFileType type);

/* ------------------------------------------------------------------ */
/* Crypto constructions (proto_crypto.c)                                */
/* ------------------------------------------------------------------ */

/* SHA-384 of data. */
int proto_sha384(const uint8_t *data, size_t len, uint8_t out[PROTO_DIGEST]);

/* ECDSA P-384 / SHA-384 verification of r || s with public key x || y:
 * 0 valid, -1 invalid or error (err says which). */
int proto_verify_p384(const uint8_t pub[PROTO_P384_PUB], const uint8_t *data,
	size_t len, const uint8_t sig[PROTO_P384_SIG], ProtoError *err);

/*
 * Sealing to a P-384 key (U-HSM -> M-HSM ticket secrets, and any other
 * "only this HSM can read it"): ephemeral ECDH, HKDF-SHA-384, AES-256-GCM.
 *   sealed = E (96, ephemeral public) || IV (12) || ciphertext || tag (16)
 *   key    = HKDF(ikm = ECDH x-coordinate, salt = E || recipient,
 *                 info = "spps seal v1 " || label)
 * aad is bound too.  Opening needs the recipient's private key: the
 * caller supplies ECDH through ecdhFn (done inside its HSM).
 */
int proto_seal_p384(const uint8_t recipient[PROTO_P384_PUB], const char *label,
	const uint8_t *aad, size_t aadLen, const uint8_t *pt, size_t ptLen,
	uint8_t **sealed, size_t *sealedLen, ProtoError *err);

/* Computes the ECDH shared x-coordinate (48 bytes) of the recipient's
 * private key with peer (x || y); returns 0 or -1. */
typedef int (*ProtoEcdhFn)(void *ctx, const uint8_t peer[PROTO_P384_PUB],
	uint8_t shared[48], ProtoError *err);

int proto_open_p384(const uint8_t recipient[PROTO_P384_PUB], const char *label,
	ProtoEcdhFn ecdhFn, void *ecdhCtx, const uint8_t *aad, size_t aadLen,
	const uint8_t *sealed, size_t sealedLen, uint8_t **pt, size_t *ptLen,
	ProtoError *err);

/* AES-256-GCM with a 12-byte IV prepended and the tag appended. */
int proto_gcm_encrypt(const uint8_t key[PROTO_KEY], const uint8_t *aad,
	size_t aadLen, const uint8_t *pt, size_t ptLen, uint8_t **out,
	size_t *outLen, ProtoError *err);
int proto_gcm_decrypt(const uint8_t key[PROTO_KEY], const uint8_t *aad,
	size_t aadLen, const uint8_t *in, size_t inLen, uint8_t **pt,
	size_t *ptLen, ProtoError *err);

/* HKDF-SHA-384 with the protocol's labels (docs/PROTOCOL.md lists them). */
int proto_hkdf(const uint8_t *ikm, size_t ikmLen, const uint8_t *salt,
	size_t saltLen, const char *label, uint8_t *out, size_t outLen);

/* Random bytes from OpenSSL's DRBG (for public values: nonces, IVs). */
int proto_random(uint8_t *out, size_t len);

/* HMAC-SHA-384 (48-byte tag) and AES-256-CMAC (16-byte tag). */
int proto_hmac_sha384(const uint8_t *key, size_t keyLen, const uint8_t *data,
	size_t len, uint8_t out[PROTO_DIGEST]);
int proto_cmac(const uint8_t key[PROTO_KEY], const uint8_t *data, size_t len,
	uint8_t mac[PROTO_MAC]);

/*
 * P-384 keys in software (the simulated silicon, ephemeral keys), as
 * OpenSSL EVP_PKEYs.  Every public key coming in is validated as a point
 * of the curve.  ECDH gives the shared x coordinate; signatures are
 * ECDSA/SHA-384 as r || s.
 */
struct evp_pkey_st;
int proto_p384_valid(const uint8_t pub[PROTO_P384_PUB]);	/* 1 or 0 */
int proto_p384_public_key(const uint8_t pub[PROTO_P384_PUB],
	struct evp_pkey_st **pkey, ProtoError *err);
int proto_p384_public_bytes(const struct evp_pkey_st *pkey,
	uint8_t pub[PROTO_P384_PUB]);
int proto_p384_generate(struct evp_pkey_st **pkey, uint8_t pub[PROTO_P384_PUB],
	ProtoError *err);
int proto_p384_private_bytes(const struct evp_pkey_st *pkey, uint8_t scalar[48]);
int proto_p384_from_private(const uint8_t scalar[48], struct evp_pkey_st **pkey,
	ProtoError *err);
int proto_p384_ecdh(struct evp_pkey_st *priv, const uint8_t peer[PROTO_P384_PUB],
	uint8_t shared[48], ProtoError *err);
int proto_p384_sign(struct evp_pkey_st *priv, const uint8_t *data, size_t len,
	uint8_t sig[PROTO_P384_SIG], ProtoError *err);

/* ------------------------------------------------------------------ */
/* Identifiers                                                          */
/* ------------------------------------------------------------------ */

/*
 * proto_uuid_canon --
 *	HSM UUIDs are hex numbers of at most 40 significant digits, compared
 *	by value: the tutorial writes 0x10 as 49 and 34 digits.  Writes the
 *	canonical form (lower case, no leading zeros, "0" for zero) into out
 *	(at least 41 bytes) or fails naming the bad input.
 */
int proto_uuid_canon(const char *text, char out[41], ProtoError *err);

/* Hex helpers: proto_hex writes 2*len lower-case digits and a NUL. */
void proto_hex(const uint8_t *data, size_t len, char *out);
int proto_unhex(const char *text, uint8_t *out, size_t len);	/* exact length */

/* ------------------------------------------------------------------ */
/* Certificates (proto_cert.c)                                          */
/* ------------------------------------------------------------------ */

typedef enum ProtoCertKind {
    PROTO_CERT_ROOT = 1,	/* the vendor root, self-signed */
    PROTO_CERT_DEVICE = 2,	/* a device: DSN, die, KFP public key */
    PROTO_CERT_UHSM = 3,	/* a U-HSM: UUID, identity signing key */
    PROTO_CERT_MHSM = 4		/* an M-HSM: UUID, signing and encryption keys */
} ProtoCertKind;

typedef struct ProtoCert {
    ProtoCertKind kind;
    char subject[41];		/* canonical UUID, or DSN hex (32 digits) */
    char die[32];		/* devices: "M2S090"; else "" */
    uint8_t signKey[PROTO_P384_PUB];	/* identity / KFP public key */
    int hasEncKey;
    uint8_t encKey[PROTO_P384_PUB];	/* M-HSM: sealing key */
    uint64_t serial;
    uint64_t issued;		/* seconds since 1970 */
    uint8_t signature[PROTO_P384_SIG];	/* by the vendor root */
} ProtoCert;

/* The bytes the vendor root signs (the cert without its signature). */
int proto_cert_tbs(const ProtoCert *cert, ProtoBuf *out);
/* Nested encoding of a whole cert inside another record. */
void proto_cert_put(ProtoBuf *b, uint16_t tag, const ProtoCert *cert);
int proto_cert_get(const ProtoItem *item, ProtoCert *cert, ProtoError *err);
/* Checks the vendor root's signature (and kind): 0 valid, -1 not. */
int proto_cert_verify(const ProtoCert *cert, ProtoCertKind kind,
	const uint8_t root[PROTO_P384_PUB], ProtoError *err);
/* SHA-384 over the cert's whole encoding: how files name a cert. */
int proto_cert_fingerprint(const ProtoCert *cert, uint8_t out[PROTO_DIGEST]);
/* The whole cert as a record of its own (e.g. a PROTO_FILE_CERT body). */
int proto_cert_encode(const ProtoCert *cert, ProtoBuf *out);
int proto_cert_decode(const uint8_t *data, size_t len, ProtoCert *cert,
	ProtoError *err);
/* "vendor root", "device", "U-HSM", "M-HSM"; NULL for an unknown kind. */
const char *proto_cert_kind_name(ProtoCertKind kind);

/* ------------------------------------------------------------------ */
/* Messages (proto_msg.c)                                               */
/* ------------------------------------------------------------------ */

/* maxDevices of a ticket without overbuild protection ("unlimited"). */
#define PROTO_UNLIMITED (-1)

/* One ticket as the OE defines it (new_hsmtask_ticket). */
typedef struct ProtoTicketSpec {
    char *name;			/* MyTicket1 */
    char *device;		/* MyDevice */
    char *action;		/* PROGRAM, VERIFY or ERASE */
    int64_t maxDevices;		/* >= 1, or PROTO_UNLIMITED */
} ProtoTicketSpec;

/*
 * Job request (.req): U-HSM -> M-HSM.  Signed by the U-HSM identity key
 * (its certificate is inside).
 */
typedef struct ProtoRequest {
    char *jobName, *taskName;
    char uhsmUuid[41];
    char mhsmUuid[41];		/* the M-HSM the OE expects to bind to */
    int internal;		/* cm_request_type INTERNAL: the U-HSM's own M-HSM function */
    uint8_t nonce[PROTO_NONCE];
    uint64_t created;
    ProtoCert uhsmCert;
    size_t nTickets;
    ProtoTicketSpec *tickets;
} ProtoRequest;

/*
 * Job reply (.rep): M-HSM -> U-HSM.  Binds the task to one physical
 * M-HSM: its certificate, a binding nonce, one ticket id per requested
 * ticket, and the digest of the request it answers.  Signed by the
 * M-HSM identity key.
 */
typedef struct ProtoReplyTicket {
    char *name;
    uint8_t id[PROTO_TICKET_ID];
} ProtoReplyTicket;

typedef struct ProtoReply {
    uint8_t requestDigest[PROTO_DIGEST];	/* SHA-384 of the request file */
    char *jobName, *taskName;
    char mhsmUuid[41];
    ProtoCert mhsmCert;
    uint8_t bindingNonce[PROTO_NONCE];
    uint64_t created;
    size_t nTickets;
    ProtoReplyTicket *tickets;
} ProtoReply;

/*
 * Bitstream: the programming data of one device, encrypted under its
 * bitstream key KIP.  The header is public (the CM sees what it
 * programs); the body only a device holding an authorization code can
 * read.
 */
typedef struct ProtoNamedBytes {
    char *name;
    uint8_t *data;
    size_t len;
} ProtoNamedBytes;

typedef struct ProtoBitstreamBody {
    uint8_t *fabric;		/* fabric configuration data */
    size_t fabricLen;
    size_t nEnvm;
    ProtoNamedBytes *envm;	/* eNVM clients: name, content */
    size_t nSnvm;
    ProtoNamedBytes *snvm;
    size_t nSecurity;
    ProtoNamedBytes *security;	/* security settings: name, value (text) */
    size_t nKeys;
    ProtoNamedBytes *keys;	/* project user keys: UEK1, UPK1, ... (32 bytes) */
    size_t nPerDevice;
    char **perDevice;		/* keys the M-HSM derives per device: "UEK1", ... */
} ProtoBitstreamBody;

typedef struct ProtoBitstream {
    char *name;			/* MyBistream */
    char *type;			/* MASTER, UEK1, UEK2, UEK3, TRUSTED_FACILITY */
    char *family, *die, *designName;
    char *features;		/* "SECURITY FABRIC ENVM" */
    char *protocol;		/* AUTH_CODE */
    char *keyMode;		/* DFK, KFP, KFPE */
    int generateCoc;
    uint8_t designDigest[PROTO_DIGEST];	/* SHA-384 of the encoded body */
    uint8_t *cipher;		/* IV || AES-256-GCM(KIP, body) || tag */
    size_t cipherLen;
} ProtoBitstream;

/* One device of the job's JTAG chain. */
typedef struct ProtoJobDevice {
    char *name;			/* MyDevice */
    int64_t hwLocation;
    char *family, *die;
    char *bitstream;		/* name of its bitstream */
} ProtoJobDevice;

/* A ticket as FlashPro Express sees it (public metadata). */
typedef struct ProtoJobTicket {
    uint8_t id[PROTO_TICKET_ID];
    char *name, *device, *action;
    int64_t maxDevices;
} ProtoJobTicket;

/*
 * The secret half of a ticket, sealed to the bound M-HSM's encryption
 * key (proto_seal_p384, label "tickets"): what the M-HSM needs to issue
 * authorization codes.
 */
typedef struct ProtoTicketSecret {
    uint8_t id[PROTO_TICKET_ID];
    char *action;
    int64_t maxDevices;
    uint8_t kip[PROTO_KEY];		/* the bitstream key */
    char *keyMode;			/* DFK, KFP, KFPE */
    uint8_t designDigest[PROTO_DIGEST];
    int generateCoc;
    size_t nBaseKeys;
    ProtoNamedBytes *baseKeys;		/* per-device base keys: UEK1, ... */
} ProtoTicketSecret;

/*
 * HSM job (.job): U-HSM -> CM.  Signed by the U-HSM identity key.  The
 * ticket secrets are sealed to the M-HSM named in the reply, with the
 * job's binding (request digest, binding nonce, M-HSM UUID, ticket ids)
 * as AAD.
 */
typedef struct ProtoJob {
    char *jobName, *taskName, *jobType;	/* jobType: FPExpress or IHP */
    char uhsmUuid[41], mhsmUuid[41];
    uint8_t requestDigest[PROTO_DIGEST];
    uint8_t bindingNonce[PROTO_NONCE];
    uint8_t mhsmCertFingerprint[PROTO_DIGEST];
    ProtoCert uhsmCert;
    uint64_t created;
    size_t nDevices;
    ProtoJobDevice *devices;
    size_t nBitstreams;
    ProtoBitstream *bitstreams;
    size_t nTickets;
    ProtoJobTicket *tickets;
    uint8_t *sealedSecrets;		/* proto_seal_p384 of the encoded secrets */
    size_t sealedLen;
} ProtoJob;

/* Certificate of Conformance: made and MACed by a device after an action. */
typedef struct ProtoCoc {
    uint8_t dsn[PROTO_DSN];
    uint8_t ticketId[PROTO_TICKET_ID];
    char *action;
    uint8_t designDigest[PROTO_DIGEST];	/* of the bitstream it ran */
    uint8_t contentDigest[PROTO_DIGEST];	/* of what it now holds */
    uint8_t codeId[PROTO_CODE_ID];	/* the authorization code it used */
    uint64_t deviceCounter;		/* the device's own action counter */
    uint8_t mac[PROTO_MAC];		/* AES-CMAC, key from KIP and DSN */
} ProtoCoc;

/* Job end certifier: the M-HSM's signed proof that a ticket was removed. */
typedef struct ProtoCertifier {
    uint8_t ticketId[PROTO_TICKET_ID];
    char *ticketName, *action;
    uint8_t requestDigest[PROTO_DIGEST];
    char mhsmUuid[41];
    int64_t maxDevices, completed, pending;
    char *endType;			/* COMPLETED or TERMINATED */
    uint64_t removed;			/* time of removal */
    uint8_t signature[PROTO_P384_SIG];	/* M-HSM identity key over the TBS */
} ProtoCertifier;

typedef struct ProtoTicketStatus {
    uint8_t id[PROTO_TICKET_ID];
    char *name, *device, *action;
    int64_t maxDevices, completed, pending;	/* left = max - completed - pending */
} ProtoTicketStatus;

/*
 * Job status (get_job_status) and job end status (complete_prog_job):
 * M-HSM -> U-HSM, signed by the M-HSM identity key.
 */
typedef struct ProtoStatus {
    char *jobName, *taskName;
    char mhsmUuid[41];
    uint8_t requestDigest[PROTO_DIGEST];
    int isEnd;
    char *endType;			/* end status: COMPLETED or TERMINATED */
    uint64_t created, sequence;		/* sequence grows with each status */
    size_t nTickets;
    ProtoTicketStatus *tickets;
    size_t nCocs;
    ProtoCoc *cocs;
    size_t nCertifiers;
    ProtoCertifier *certifiers;
} ProtoStatus;

/*
 * Each message has an encoder to a TLV body and a decoder from one.
 * The file-level functions add the envelope: *_write signs with signFn
 * (the writer's identity key, inside its HSM) and *_read checks the
 * envelope and the signature against the certificate found inside
 * (request, job) or a key the caller already trusts (reply: the cert is
 * checked by the caller against the vendor root; status: the M-HSM key
 * from the reply), and returns the decoded message.
 */
int proto_request_encode(const ProtoRequest *m, ProtoBuf *out);
int proto_request_decode(const uint8_t *body, size_t len, ProtoRequest *m, ProtoError *err);
void proto_request_free(ProtoRequest *m);

int proto_reply_encode(const ProtoReply *m, ProtoBuf *out);
int proto_reply_decode(const uint8_t *body, size_t len, ProtoReply *m, ProtoError *err);
void proto_reply_free(ProtoReply *m);

int proto_bitstream_body_encode(const ProtoBitstreamBody *m, ProtoBuf *out);
int proto_bitstream_body_decode(const uint8_t *body, size_t len, ProtoBitstreamBody *m, ProtoError *err);
void proto_bitstream_body_free(ProtoBitstreamBody *m);

int proto_ticket_secrets_encode(const ProtoTicketSecret *s, size_t n, ProtoBuf *out);
int proto_ticket_secrets_decode(const uint8_t *body, size_t len, ProtoTicketSecret **s, size_t *n, ProtoError *err);
void proto_ticket_secrets_free(ProtoTicketSecret *s, size_t n);
/* The AAD binding sealed ticket secrets to their job. */
int proto_job_binding(const ProtoJob *m, ProtoBuf *out);

int proto_job_encode(const ProtoJob *m, ProtoBuf *out);
int proto_job_decode(const uint8_t *body, size_t len, ProtoJob *m, ProtoError *err);
void proto_job_free(ProtoJob *m);

/* The bytes a CoC's MAC covers, and the MAC itself (AES-256-CMAC under
 * HKDF(KIP, salt = DSN, "spps coc v1")): both sides use these. */
int proto_coc_tbs(const ProtoCoc *coc, ProtoBuf *out);
int proto_coc_mac(const uint8_t kip[PROTO_KEY], const ProtoCoc *coc,
	uint8_t mac[PROTO_MAC], ProtoError *err);
/* The bytes an end certifier's signature covers. */
int proto_certifier_tbs(const ProtoCertifier *c, ProtoBuf *out);

int proto_status_encode(const ProtoStatus *m, ProtoBuf *out);
int proto_status_decode(const uint8_t *body, size_t len, ProtoStatus *m, ProtoError *err);
void proto_status_free(ProtoStatus *m);

/* A CoC or an end certifier as a record of its own (a device hands its
 * CoC to the M-HSM; the M-HSM keeps both until the status is written). */
int proto_coc_encode(const ProtoCoc *c, ProtoBuf *out);
int proto_coc_decode(const uint8_t *data, size_t len, ProtoCoc *c, ProtoError *err);
void proto_coc_free(ProtoCoc *c);
int proto_certifier_encode(const ProtoCertifier *c, ProtoBuf *out);
int proto_certifier_decode(const uint8_t *data, size_t len, ProtoCertifier *c,
	ProtoError *err);
void proto_certifier_free(ProtoCertifier *c);

/*
 * Files (encoding + envelope + signature).  Every encoder checks its
 * output with the decoder, so *_write refuses (with err saying which
 * field) what *_read would refuse.  The signed files carry
 * PROTO_AUTH_SIGNATURE; signFn signs inside the writer's HSM.
 *
 * The readers check the envelope (type, sizes), decode the body, and
 * verify the signature:
 *   request, job: with the U-HSM certificate inside, whose subject must be
 *     the file's uhsmUuid; with root not NULL the certificate is first
 *     checked against it (kind U-HSM);
 *   reply: the same with the M-HSM certificate (kind M-HSM, subject =
 *     mhsmUuid);
 *   status: with mhsmKey, the M-HSM identity key bound in the reply
 *     (checked before the body is decoded).
 * what names the file in messages ("job file './MyProgJob.job'"); NULL
 * for "job file" etc.  proto_request_read also gives the request digest
 * (SHA-384 of the whole file image) when digest is not NULL.  On failure
 * nothing is returned (the struct is zeroed).
 */
int proto_request_write(const ProtoRequest *m, ProtoSignFn signFn,
	void *signCtx, uint8_t **out, size_t *outLen, ProtoError *err);
int proto_request_read(const uint8_t *image, size_t len, const char *what,
	const uint8_t root[PROTO_P384_PUB], ProtoRequest *m,
	uint8_t digest[PROTO_DIGEST], ProtoError *err);
int proto_reply_write(const ProtoReply *m, ProtoSignFn signFn, void *signCtx,
	uint8_t **out, size_t *outLen, ProtoError *err);
int proto_reply_read(const uint8_t *image, size_t len, const char *what,
	const uint8_t root[PROTO_P384_PUB], ProtoReply *m, ProtoError *err);
int proto_job_write(const ProtoJob *m, ProtoSignFn signFn, void *signCtx,
	uint8_t **out, size_t *outLen, ProtoError *err);
int proto_job_read(const uint8_t *image, size_t len, const char *what,
	const uint8_t root[PROTO_P384_PUB], ProtoJob *m, ProtoError *err);
int proto_status_write(const ProtoStatus *m, ProtoSignFn signFn,
	void *signCtx, uint8_t **out, size_t *outLen, ProtoError *err);
int proto_status_read(const uint8_t *image, size_t len, const char *what,
	const uint8_t mhsmKey[PROTO_P384_PUB], ProtoStatus *m, ProtoError *err);

#endif /* SPPS_PROTO_H */

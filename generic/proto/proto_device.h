/*
 * proto_device.h --
 *
 *	The messages between a device (through its programmer) and the
 *	M-HSM while an action runs (docs/PROTOCOL.md, "Programming a device";
 *	docs/FORMATS.md, "Device protocol messages"):
 *
 *	  M-HSM -> device   challenge (32 random bytes, no envelope)
 *	  device -> M-HSM   authenticity answer   (ProtoDevAuth)
 *	  M-HSM -> device   authorization code    (proto_authcode_*)
 *	  device -> M-HSM   CoC                   (ProtoCoc, proto_coc_encode)
 *
 *	All are TLV records (proto.h) with no file envelope: they live only
 *	in memory between the two ends.  Keys in software (the device's KFP,
 *	ephemeral keys) are the EVP_PKEYs of proto.h's P-384 helpers.
 *
 *	Conventions are proto.h's.
 */

#ifndef SPPS_PROTO_DEVICE_H
#define SPPS_PROTO_DEVICE_H

#include "proto.h"

#define PROTO_P384_PRIV 48	/* a P-384 private scalar, big-endian */

/* Key modes of the authorization code. */
typedef enum ProtoKeyMode {
    PROTO_KEYMODE_DFK = 1,
    PROTO_KEYMODE_KFP = 2,
    PROTO_KEYMODE_KFPE = 3
} ProtoKeyMode;

/* "DFK" <-> PROTO_KEYMODE_DFK ...; 0 for an unknown name. */
ProtoKeyMode proto_key_mode(const char *name);
const char *proto_key_mode_name(ProtoKeyMode mode);

/* ------------------------------------------------------------------ */
/* Device keys                                                          */
/* ------------------------------------------------------------------ */

/* FK = HKDF(DFK-DB key, salt = DSN, "spps dfk v1"). */
int proto_device_fk(const uint8_t dfkDbKey[PROTO_KEY],
	const uint8_t dsn[PROTO_DSN], uint8_t fk[PROTO_KEY], ProtoError *err);

/* A per-device user key: HKDF(base key, salt = DSN,
 * "spps per-device key v1 <NAME>"). */
int proto_per_device_key(const uint8_t base[PROTO_KEY], const char *name,
	const uint8_t dsn[PROTO_DSN], uint8_t key[PROTO_KEY], ProtoError *err);

/*
 * The secrets a device is made with (sim_factory_device_keys seals this
 * record to the bench): FK, and on dies with one, the KFP scalar.
 */
typedef struct ProtoDeviceSecrets {
    uint8_t dsn[PROTO_DSN];
    uint8_t fk[PROTO_KEY];
    int hasKfp;
    uint8_t kfp[PROTO_P384_PRIV];
} ProtoDeviceSecrets;

int proto_device_secrets_encode(const ProtoDeviceSecrets *s, ProtoBuf *out);
int proto_device_secrets_decode(const uint8_t *body, size_t len,
	ProtoDeviceSecrets *s, ProtoError *err);

/* ------------------------------------------------------------------ */
/* Authenticity check                                                   */
/* ------------------------------------------------------------------ */

/*
 * ProtoDevAuth --
 *	A device's answer to a challenge.  With KFP: its certificate, a fresh
 *	ephemeral public key D (used by the KFPE key mode) and an ECDSA
 *	signature by KFP over proto_dev_auth_tbs.  Without: a CMAC under
 *	HKDF(FK, DSN, "spps device auth v1") of challenge || DSN.
 */
typedef struct ProtoDevAuth {
    uint8_t dsn[PROTO_DSN];
    char die[32];
    uint8_t challenge[PROTO_NONCE];	/* echoed */
    int hasKfp;
    ProtoCert cert;			/* hasKfp */
    uint8_t ephemeral[PROTO_P384_PUB];	/* D, hasKfp */
    uint8_t sig[PROTO_P384_SIG];	/* hasKfp */
    uint8_t mac[PROTO_MAC];		/* !hasKfp */
} ProtoDevAuth;

/* "spps device auth v1" || challenge || DSN || D: what KFP signs. */
int proto_dev_auth_tbs(const uint8_t challenge[PROTO_NONCE],
	const uint8_t dsn[PROTO_DSN], const uint8_t d[PROTO_P384_PUB],
	ProtoBuf *out);
/* The DFK-mode answer. */
int proto_dev_auth_mac(const uint8_t fk[PROTO_KEY],
	const uint8_t challenge[PROTO_NONCE], const uint8_t dsn[PROTO_DSN],
	uint8_t mac[PROTO_MAC], ProtoError *err);

int proto_dev_auth_encode(const ProtoDevAuth *m, ProtoBuf *out);
int proto_dev_auth_decode(const uint8_t *body, size_t len, ProtoDevAuth *m,
	ProtoError *err);

/* ------------------------------------------------------------------ */
/* Authorization code                                                   */
/* ------------------------------------------------------------------ */

/* What a code carries to one device for one action. */
typedef struct ProtoAuthCode {
    uint8_t kip[PROTO_KEY];
    char *action;			/* PROGRAM, VERIFY, ERASE */
    uint8_t ticketId[PROTO_TICKET_ID];
    uint8_t designDigest[PROTO_DIGEST];
    uint8_t codeId[PROTO_CODE_ID];
    size_t nKeys;
    ProtoNamedBytes *keys;		/* per-device user keys (32 bytes each) */
} ProtoAuthCode;

/* The peer keys a code is encrypted to (M-HSM side). */
typedef struct ProtoCodeTarget {
    uint8_t dsn[PROTO_DSN];
    uint8_t challenge[PROTO_NONCE];
    ProtoKeyMode mode;
    const uint8_t *fk;			/* DFK: the device's factory key */
    const uint8_t *kfp;			/* KFP, KFPE: the device's KFP public key */
    const uint8_t *d;			/* KFPE: the device's ephemeral key D */
} ProtoCodeTarget;

/* The keys a device opens a code with (device side). */
typedef struct ProtoCodeKeys {
    uint8_t dsn[PROTO_DSN];
    uint8_t challenge[PROTO_NONCE];	/* of its current session */
    const uint8_t *fk;
    struct evp_pkey_st *kfp;		/* NULL if the die has none */
    struct evp_pkey_st *d;		/* ephemeral key of this session, or NULL */
} ProtoCodeKeys;

/*
 * proto_authcode_seal --
 *	Encrypts code for target: AES-256-GCM under the key mode's key
 *	(ephemeral keys drawn here), AAD "spps authcode v1" || DSN || mode ||
 *	challenge.  *out is malloc'ed.
 */
int proto_authcode_seal(const ProtoCodeTarget *target, const ProtoAuthCode *code,
	uint8_t **out, size_t *outLen, ProtoError *err);

/*
 * proto_authcode_open --
 *	The device's side: derives the key for the code's mode from its own
 *	keys (a mode it cannot do is refused), decrypts (a code for another
 *	device or session fails authentication), decodes.  *mode gets the
 *	key mode.  Free with proto_authcode_free (cleanses).
 */
int proto_authcode_open(const ProtoCodeKeys *keys, const uint8_t *in,
	size_t inLen, ProtoAuthCode *code, ProtoKeyMode *mode, ProtoError *err);
void proto_authcode_free(ProtoAuthCode *code);

#endif /* SPPS_PROTO_DEVICE_H */

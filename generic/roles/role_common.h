/*
 * role_common.h --
 *
 *	What the U-HSM and M-HSM roles share: opening the HSM of a server
 *	name, identity keys in firmware key stores, and adapters that let the
 *	protocol core (proto.h) sign and do ECDH with keys that never leave
 *	the HSM.  The roles run inside the security boundary: they use the
 *	engine's public API and hsm_fw.h, nothing above.
 */

#ifndef SPPS_ROLE_COMMON_H
#define SPPS_ROLE_COMMON_H

#include "hsm/hsm_api.h"
#include "hsm/hsm_fw.h"
#include "proto/proto.h"

/* Firmware key store ids of the roles (hsm_fw_open_key_store). */
#define ROLE_FW_STORE_UHSM 1
#define ROLE_FW_STORE_MHSM 2
#define ROLE_FW_STORE_FACTORY 3
#define ROLE_FW_STORE_BENCH 4

/*
 * RoleHsm --
 *	An open HSM: a session on its state directory.  Several roles can
 *	share one (a U-HSM with its M-HSM function).
 */
typedef struct RoleHsm {
    hsm_hdl_t session;
    char *dir;			/* the state directory */
    char *serverName;		/* the -hsm_server_name it was opened for */
} RoleHsm;

/*
 * role_hsm_open --
 *	Opens the HSM of a server name: $SPPS_HOME/hsm/<serverName>/, created
 *	on first use.  Server names are host names or IP addresses: letters,
 *	digits, '.', '-', '_' (at most 64); anything else is refused, so a
 *	name can never reach outside $SPPS_HOME/hsm.
 */
int role_hsm_open(const char *serverName, RoleHsm **hsm, ProtoError *err);

/* role_server_name_valid -- 1 if role_hsm_open accepts the name: 1..64
 * letters, digits, '.', '-', '_', starting with a letter or digit. */
int role_server_name_valid(const char *serverName);

/* role_hsm_open_dir -- the same for an explicit state directory (factory, bench). */
int role_hsm_open_dir(const char *dir, RoleHsm **hsm, ProtoError *err);

void role_hsm_close(RoleHsm *hsm);

/*
 * A P-384 key in a firmware key store, used through the adapters below.
 * role_key_generate creates one (strict: durable before it returns) and
 * gives its id and public key; role_key_public recovers the public key
 * of an existing one.
 */
typedef struct RoleKey {
    RoleHsm *hsm;
    hsm_hdl_t keyStore;		/* firmware key store service */
    uint32_t keyId;
} RoleKey;

int role_key_store_open(RoleHsm *hsm, uint16_t fwStore, hsm_hdl_t *keyStore,
	ProtoError *err);
int role_key_generate(RoleHsm *hsm, hsm_hdl_t keyStore, hsm_key_type_t type,
	uint32_t *keyId, uint8_t *pub, size_t pubLen, ProtoError *err);
int role_key_public(const RoleKey *key, uint8_t pub[PROTO_P384_PUB],
	ProtoError *err);

/* ProtoSignFn over a RoleKey (ctx = RoleKey *): ECDSA P-384/SHA-384 r || s. */
int role_sign(void *ctx, const uint8_t *data, size_t len,
	uint8_t sig[PROTO_P384_SIG], ProtoError *err);

/* ProtoEcdhFn over a RoleKey (ctx = RoleKey *): the shared x coordinate. */
int role_ecdh(void *ctx, const uint8_t peer[PROTO_P384_PUB], uint8_t shared[48],
	ProtoError *err);

/*
 * AES-256-GCM under an AES-256 key of a firmware key store (the U-HSM
 * master key, the M-HSM's wrapping keys): wrap and unwrap secrets so that
 * they may be kept outside the HSM.  Output/input: IV (12) || ct || tag.
 * The IV comes from aesKey->hsm's random generator; aadLen <= 65535.
 */
int role_wrap(const RoleKey *aesKey, const uint8_t *aad, size_t aadLen,
	const uint8_t *pt, size_t ptLen, uint8_t **out, size_t *outLen,
	ProtoError *err);
int role_unwrap(const RoleKey *aesKey, const uint8_t *aad, size_t aadLen,
	const uint8_t *in, size_t inLen, uint8_t **pt, size_t *ptLen,
	ProtoError *err);

/* role_random -- len bytes from the HSM's own random generator. */
int role_random(RoleHsm *hsm, uint8_t *out, size_t len, ProtoError *err);

/* role_mac_key -- a 32-byte key bound to this HSM and a label (hsm_fw_derive),
 * e.g. to MAC the files a tool keeps for itself (projects, settings). */
int role_mac_key(RoleHsm *hsm, const char *label, uint8_t key[32], ProtoError *err);

/* Firmware blobs holding a role's records (see hsm_fw.h): thin wrappers
 * that fill a ProtoError from the engine's detail. */
int role_blob_read(RoleHsm *hsm, const char *name, uint8_t **data, size_t *len,
	int *found, ProtoError *err);
int role_blob_write(RoleHsm *hsm, const char *name, const uint8_t *data,
	size_t len, ProtoError *err);

/* role_hsm_error -- fills err with "what: <engine text>: <engine detail>". */
int role_hsm_error(ProtoError *err, const char *what, hsm_err_t code);

#endif /* SPPS_ROLE_COMMON_H */

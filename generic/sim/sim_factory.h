/*
 * sim_factory.h --
 *
 *	The simulated silicon vendor (Microchip's part in SPPS): the vendor
 *	root that certifies devices and HSMs, and the DFK-DB key from which
 *	every device's factory key is derived (docs/PROTOCOL.md).
 *
 *	Its keys live in an HSM of its own, an engine state directory at
 *	$SPPS_FACTORY, default $SPPS_HOME/factory, created on first use; they
 *	never leave it.  An OE machine and a CM machine that are meant to
 *	trust one vendor point SPPS_FACTORY at the same directory (one
 *	SPPS_HOME does this by itself).
 */

#ifndef SPPS_SIM_FACTORY_H
#define SPPS_SIM_FACTORY_H

#include "proto/proto.h"

typedef struct SimFactory SimFactory;

/* Opens (creating on first use) the factory; err says where and why not. */
int sim_factory_open(SimFactory **factory, ProtoError *err);
void sim_factory_close(SimFactory *factory);

/* The factory's directory (for messages). */
const char *sim_factory_dir(const SimFactory *factory);

/* The vendor root public key, x || y. */
int sim_factory_root(SimFactory *factory, uint8_t root[PROTO_P384_PUB],
	ProtoError *err);

/*
 * sim_factory_certify --
 *	Issues a certificate: the caller fills kind, subject, die, signKey
 *	and (M-HSM) encKey; the factory sets serial and issued and signs.
 *	Refuses a ROOT kind, malformed subjects (a canonical UUID for HSMs, 32
 *	hex digits for devices) and keys that are not valid P-384 points.
 *	Also refused: a die on an HSM, a device die that is unknown or has no
 *	KFP, a sealing key on anything but an M-HSM.  A device's die is
 *	rewritten in its canonical form (sim_die_canon).  Serials are unique
 *	across processes (recorded durably before use).
 */
int sim_factory_certify(SimFactory *factory, ProtoCert *cert, ProtoError *err);

/*
 * sim_factory_seal_dfk_key --
 *	The DFK-DB key sealed to an M-HSM's sealing key (proto_seal_p384,
 *	purpose "dfk-db"), for the M-HSM to unseal and keep in its HSM:
 *	delivered at the M-HSM's provisioning.  The recipient key must be in
 *	a valid M-HSM certificate issued by this factory.  No AAD: open it
 *	with proto_open_p384(cert->encKey, "dfk-db", ecdh, ctx, NULL, 0, ...).
 *	The plaintext is the 32-byte key.
 */
int sim_factory_seal_dfk_key(SimFactory *factory, const ProtoCert *mhsmCert,
	uint8_t **sealed, size_t *sealedLen, ProtoError *err);

/*
 * sim_factory_device_keys --
 *	Manufactures the secrets of a new device: its factory key
 *	FK = HKDF(DFK-DB key, DSN, "spps dfk v1"), and, for dies that have
 *	one, a KFP key pair whose private half is returned sealed to the
 *	bench's sealing key (the simulated silicon keeps it) and whose public
 *	half is certified (kind DEVICE, subject DSN, die).  FK is returned
 *	sealed to the same key.  hasKfp says whether the die has KFP.
 *
 *	*sealedSecrets = proto_seal_p384(benchKey, SIM_DEVICE_SECRETS_LABEL,
 *	aad = the DSN (16 bytes), the ProtoDeviceSecrets record of
 *	proto_device.h: tag 1 DSN (16), tag 2 FK (32), tag 3 KFP private
 *	scalar (48, only on dies with KFP)).  kfpCert is zeroed when the die
 *	has no KFP.  An unknown die is refused.
 */
int sim_factory_device_keys(SimFactory *factory, const uint8_t dsn[PROTO_DSN],
	const char *die, const uint8_t benchKey[PROTO_P384_PUB],
	uint8_t **sealedSecrets, size_t *sealedLen, int *hasKfp,
	ProtoCert *kfpCert, ProtoError *err);

/* The purpose label of the sealed device secrets. */
#define SIM_DEVICE_SECRETS_LABEL "device secrets"

/*
 * Dies.  Names are case-insensitive and may carry the suffixes users
 * write after a die (T, TS, S, TL, TLS, XT, L, LS): "M2S090TS",
 * "mpf300t" and "MPFS250T" are the dies M2S090, MPF300 and MPFS250.
 */

/* sim_die_canon -- the canonical die ("M2S090") of a name; -1 if unknown. */
int sim_die_canon(const char *die, char out[32]);

/* sim_die_has_kfp -- 1 if the die has a factory ECC key pair (KFP). */
int sim_die_has_kfp(const char *die);

/* sim_die_family -- "SmartFusion2", "IGLOO2", "PolarFire", "PolarFire SoC",
 * or NULL for an unknown die.  The list of dies is docs/FORMATS.md's. */
const char *sim_die_family(const char *die);

#endif /* SPPS_SIM_FACTORY_H */

/*
 * proto_ident.c --
 *
 *	Identifiers: HSM UUIDs are hex numbers compared by value.  The
 *	tutorial writes the M-HSM UUID 0x10 with 49 digits on the OE side
 *	and 34 on the CM side; both must name the same HSM.
 */

#include <string.h>

#include "proto.h"
#include "proto_int.h"

#define UUID_MAX_DIGITS 40	/* significant digits: 160 bits */

/*
 *----------------------------------------------------------------------
 *
 * proto_uuid_canon --
 *	Canonical form of a UUID: lower case, no "0x", no leading zeros,
 *	"0" for zero.  Accepts upper or lower case digits, an optional 0x
 *	or 0X prefix and any number of leading zeros; refuses an empty
 *	number, a non-hex character and more than 40 significant digits,
 *	quoting the input.
 *
 *----------------------------------------------------------------------
 */

int
proto_uuid_canon(const char *text, char out[41], ProtoError *err)
{
    char quoted[72];
    const char *p;
    size_t n = 0, i;

    out[0] = '\0';
    if (text == NULL) {
	return proto_err(err, "no UUID given");
    }
    proto_quote(text, quoted, sizeof(quoted));
    p = text;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
	p += 2;
    }
    if (*p == '\0') {
	return proto_err(err, "invalid UUID '%s': it has no hex digits",
		quoted);
    }
    for (i = 0; p[i] != '\0'; i++) {
	if (proto_hex_digit((unsigned char) p[i]) < 0) {
	    return proto_err(err, "invalid UUID '%s': '%c' is not a hex digit",
		    quoted, (p[i] >= 0x20 && p[i] < 0x7F) ? p[i] : '?');
	}
    }
    while (*p == '0' && p[1] != '\0') {
	p++;
    }
    n = strlen(p);
    if (n > UUID_MAX_DIGITS) {
	return proto_err(err, "invalid UUID '%s': %lu significant hex digits, "
		"at most %d are allowed", quoted, (unsigned long) n,
		UUID_MAX_DIGITS);
    }
    for (i = 0; i < n; i++) {
	char c = p[i];

	out[i] = (c >= 'A' && c <= 'F') ? (char) (c - 'A' + 'a') : c;
    }
    out[n] = '\0';
    return 0;
}

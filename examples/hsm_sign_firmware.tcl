# Sign a firmware image with a P-256 key made inside the HSM, then check it.
package require spps
set hsm    [spps::hsm open_session]
set store  [$hsm open_key_store_service -key_store_identifier 1 -authentication_nonce 1234 -create]
set key    [[$store open_key_management_service] generate_key -key_type ECDSA_NIST_P256]
set image  [string repeat "firmware v1.0 " 1000]
set sig    [[$store open_signature_generation_service] generate_signature -input_message -message $image \
               -key_identifier [dict get $key key_identifier] -scheme_id ECDSA_NIST_P256_SHA_256]
set check  [$hsm open_signature_verification_service]
foreach {name data} [list genuine $image tampered [string replace $image 9 9 2]] {
    set ok [$check verify_signature -input_message -message $data -signature $sig \
               -key [dict get $key public_key] -scheme_id ECDSA_NIST_P256_SHA_256]
    puts "$name image: signature [expr {$ok ? "valid" : "INVALID"}]"
}
$hsm close

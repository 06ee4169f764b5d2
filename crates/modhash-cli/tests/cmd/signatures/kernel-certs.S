/*
 * The certificate lists of a Linux kernel image, laid out as the kernel's
 * certs/system_certificates.S and certs/revocation_certificates.S lay them
 * out (in .init.rodata, which make-fixtures.sh links into a vmlinux-like
 * executable), plus a decoy certificate in .data that the kernel never
 * loads. The .incbin files are written by make-fixtures.sh.
 */
	.section ".init.rodata","a"

	.align 8
	.globl system_certificate_list
system_certificate_list:
__cert_list_start:
__module_cert_start:
	.incbin "signing_key.x509"
__module_cert_end:
	.incbin "x509_certificate_list"
__cert_list_end:

	.align 8
	.globl system_certificate_list_size
system_certificate_list_size:
	.quad __cert_list_end - __cert_list_start

	.globl module_cert_size
module_cert_size:
	.quad __module_cert_end - __module_cert_start

	.align 8
	.globl revocation_certificate_list
revocation_certificate_list:
__revocation_list_start:
	.incbin "x509_revocation_list"
__revocation_list_end:

	.align 8
	.globl revocation_certificate_list_size
revocation_certificate_list_size:
	.quad __revocation_list_end - __revocation_list_start
	.quad 0

	.data
	.globl decoy_certificate
decoy_certificate:
	.incbin "decoy.x509"

	.section .note.GNU-stack,"",@progbits

	.text
	.globl _start
_start:
	ret

#pragma once
// QEMU 7.2 migration stream constants: the only place livemig names them.
// Layout (all big-endian), from qemu/qemu migration/savevm.c
// (qemu_savevm_state_header, save_section_header, save_section_footer,
// qemu_savevm_command_send, qemu_savevm_state_complete_precopy) and
// scripts/analyze-migration.py (MigrationDump); RAM records from
// migration/ram.c (ram_save_setup, save_page_header, ram_load_precopy).
// See /work/shared/reference/qemu-migration-stream.md sections 1-2 and
// docs/devel/migration.rst "Stream structure".
//
//   Header   := be32 magic "QEVM" | be32 version 3
//   Config   := u8 0x07 | be32 len | name[len]            (no subsections accepted)
//   START    := u8 0x01 | be32 sid | u8 len | idstr | be32 instance | be32 version | body | footer
//   PART/END := u8 0x02/0x03 | be32 sid | body | footer
//   footer   := u8 0x7e | be32 sid
//   RAM body := { be64 (offset | flags) [u8 len | idstr] payload }* | be64 EOS
//   tail     := FULL sections, EOF 0x00, VMDESC 0x06 (opaque to livemig, passed through)

#include <cstddef>
#include <cstdint>

namespace utsushi::livemig::qemu {

// savevm.c: QEMU_VM_FILE_MAGIC, QEMU_VM_FILE_VERSION.
inline constexpr std::uint32_t k_file_magic = 0x5145564d;  // "QEVM"
inline constexpr std::uint32_t k_file_version = 0x00000003;

// savevm.c: QEMU_VM_* section type bytes.
enum SectionType : std::uint8_t {
  k_vm_eof = 0x00,
  k_vm_section_start = 0x01,
  k_vm_section_part = 0x02,
  k_vm_section_end = 0x03,
  k_vm_section_full = 0x04,
  k_vm_subsection = 0x05,
  k_vm_vmdescription = 0x06,
  k_vm_configuration = 0x07,
  k_vm_command = 0x08,
  k_vm_section_footer = 0x7e,
};

// ram.c: ram_mig_init() registers "ram", instance 0, version 4; ram_load() rejects others.
inline constexpr char k_ram_idstr[] = "ram";
inline constexpr std::uint32_t k_ram_instance = 0;
inline constexpr std::uint32_t k_ram_version = 4;

// ram.c: RAM_SAVE_FLAG_* (7.2 values). The flags occupy the bits below the
// target page size; the remaining bits are the byte offset inside the RAMBlock.
inline constexpr std::uint64_t k_flag_full = 0x01;         // obsolete, never sent
inline constexpr std::uint64_t k_flag_zero = 0x02;         // u8 fill (always 0)
inline constexpr std::uint64_t k_flag_mem_size = 0x04;     // setup: total | flag, block list
inline constexpr std::uint64_t k_flag_page = 0x08;         // 4096 raw bytes follow
inline constexpr std::uint64_t k_flag_eos = 0x10;          // end of this section's RAM data
inline constexpr std::uint64_t k_flag_continue = 0x20;     // same block as the previous record
inline constexpr std::uint64_t k_flag_xbzrle = 0x40;       // refused (capability xbzrle)
inline constexpr std::uint64_t k_flag_hook = 0x80;         // refused (RDMA; qemu-file.h)
inline constexpr std::uint64_t k_flag_compress_page = 0x100;  // refused (capability compress)
inline constexpr std::uint64_t k_flag_multifd_flush = 0x200;  // refused (QEMU >= 8.0)

// x86 TARGET_PAGE_BITS 12: records are always in 4096-byte target pages, even
// for hugepage-backed blocks (ram_save_host_page), and vmdesc says "page_size": 4096.
inline constexpr std::size_t k_page_size = 4096;
inline constexpr std::uint64_t k_page_mask = ~std::uint64_t{k_page_size - 1};

// savevm.c: qemu_savevm_command_send() payloads are at most 65535 bytes; the
// configuration name is a machine type (short); idstr lengths are a u8.
inline constexpr std::uint32_t k_max_config_name = 256;

}  // namespace utsushi::livemig::qemu

#pragma once
// ADAPTER, one line for the lead to switch: the accelerator probe moves from
// common/virt_probe.h to utsushi_virt (utsushi/virt/accel.h). Until then the
// guest library reads it from common.
#include "utsushi/common/virt_probe.h"  // -> "utsushi/virt/accel.h"

#include "utsushi/clone/sysprep.h"

#include <fmt/core.h>

#include "utsushi/clone/customise.h"
#include "utsushi/clone/secrets.h"
#include "utsushi/guest/identity_edit.h"
#include "utsushi/imagefmt/registry.h"

namespace utsushi::clone {

Result<std::vector<SysprepResult>> sysprep_images(
    const SysprepOptions& o, const std::function<void(const std::string&, const std::string&)>& on_image) {
  if (o.images.empty()) {
    return fail(Errc::invalid_argument, "no image given");
  }
  UTSUSHI_TRY(selected_operations(o.operations));
  std::vector<CustomiseJob> jobs;
  std::vector<SysprepResult> results;
  for (const std::string& image : o.images) {
    std::string format = UTSUSHI_TRY_CTX(imagefmt::probe_path(image), image).format;
    if (format != "qcow2" && format != "raw") {
      return fail(Errc::not_supported,
                  fmt::format("{} is {}: sysprep writes qcow2 and raw images in place (convert it first)", image, format));
    }
    SysprepResult r;
    r.image = image;
    CustomiseJob job;
    job.name = image;
    job.disks.push_back({image, format, guest::DiskAccess::writable});
    r.machine_id = o.firstboot_machine_id ? std::string() : guest::random_machine_id();
    job.params.machine_id = r.machine_id;
    for (GeneratedKey& k : UTSUSHI_TRY(generate_host_keys({"rsa", "ecdsa", "ed25519"}, "root@localhost"))) {
      r.host_keys[k.key.type] = k.fingerprint;
      job.params.host_keys.push_back(std::move(k.key));
    }
    jobs.push_back(std::move(job));
    results.push_back(std::move(r));
  }
  CustomiseOptions co;
  co.operations = o.operations;
  co.max_disks = o.max_disks;
  co.mode = o.dry_run ? guest::Mode::plan : guest::Mode::apply;
  co.on_guest = [&](std::size_t i, const guest::Report&) {
    if (on_image) {
      on_image(o.images[i], o.dry_run ? "planned" : "done");
    }
  };
  CustomiseResult done = UTSUSHI_TRY(customise(jobs, co));
  for (std::size_t i = 0; i < results.size(); ++i) {
    results[i].report = std::move(done.reports[i]);
  }
  return results;
}

}  // namespace utsushi::clone

-- Argo CD health check for fedbackup.io/v1alpha1 WorkloadRestore (deploy/gitops/ of fedbackup).
--   Healthy      phase Completed, for the current spec (status.observedGeneration = metadata.generation):
--                every VM was restored (with spec.dryRun: every VM could be).
--   Degraded     phase Failed: nothing was restored (the backup does not exist or has not finished, no VM
--                could be restored); the operator does not retry it.
--                phase PartiallyFailed: the restore finished but some VMs failed or were skipped
--                (status.results), so they may still run on the data the restore was meant to replace.
--   Progressing  anything else: not picked up by the operator yet, a newer spec it has not acted on yet,
--                or New (also while it waits for its backup, spec.waitForBackup), Planning, InProgress.
-- The message is the Ready condition's when the restore has finished, the Progressing condition's before.
-- Written for Lua 5.1 (Argo CD's interpreter) and tested with Debian's lua5.4.
local hs = { status = "Progressing", message = "" }

local function condition(conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function messageOf(c)
  if c == nil or c.message == nil then
    return ""
  end
  return c.message
end

local phase = obj.status ~= nil and obj.status.phase or nil
if phase == nil or phase == "" then
  hs.message = "Waiting for the fedbackup operator to pick up the restore"
  return hs
end

local generation = obj.metadata ~= nil and obj.metadata.generation or nil
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = string.format(
    "Waiting for the fedbackup operator to act on generation %d (the status is for %s)",
    generation,
    observed == nil and "an older one" or string.format("generation %d", observed)
  )
  return hs
end

local ready = condition("Ready")
if phase == "Completed" then
  hs.status = "Healthy"
  hs.message = messageOf(ready)
elseif phase == "Failed" or phase == "PartiallyFailed" then
  hs.status = "Degraded"
  local reason = ready ~= nil and ready.reason or phase
  hs.message = phase .. " (" .. reason .. "): " .. messageOf(ready)
else
  hs.status = "Progressing"
  local progressing = condition("Progressing")
  local message = messageOf(progressing)
  if message == "" then
    message = messageOf(ready)
  end
  hs.message = phase .. ": " .. message
end
return hs

-- Argo CD health check for fedbackup.io/v1alpha1 FederatedBackup (deploy/gitops/ of fedbackup).
--   Healthy      phase Completed, for the current spec (status.observedGeneration = metadata.generation):
--                every selected VM was captured.
--   Degraded     phase Failed: nothing was captured, or the spec cannot be acted on (a missing claim or
--                VolumeSnapshotClass); the operator does not retry it.
--                phase PartiallyFailed: the backup finished but some VMs are missing (status.missing), so
--                they have no backup from this run; the operator does not retry it either.
--   Progressing  anything else: not picked up by the operator yet, a newer spec it has not acted on yet,
--                or New, InProgress, Verifying, Reconciling.
-- The message is the Ready condition's when the backup has finished, the Progressing condition's before.
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
  hs.message = "Waiting for the fedbackup operator to pick up the backup"
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

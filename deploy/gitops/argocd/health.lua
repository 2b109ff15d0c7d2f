-- Argo CD health check for the agentmemory.io kinds (MemoryStore, MemoryTenant, CompliancePolicy).
-- Driven by the Ready condition and observedGeneration, the same signals Flux's kstatus reads:
--   being deleted, no status yet, or a spec generation not yet reconciled  -> Progressing
--   Ready=True                                                              -> Healthy
--   Ready=False waiting for an object that may be applied later
--     (StoreNotFound, PolicyNotFound, SecretNotFound; retried every 30 s)   -> Progressing
--   Ready=False for any other reason (InvalidSpec, StoreUnavailable, ...)   -> Degraded
--   Ready=Unknown                                                           -> Progressing
local hs = {}
local waiting = {StoreNotFound = true, PolicyNotFound = true, SecretNotFound = true}

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Being deleted: the operator finalizes it (access is revoked first)"
  return hs
end

local status = obj.status
local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile it"
  return hs
end
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. tostring(generation)
  return hs
end

local ready = nil
for _, condition in ipairs(status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  end
end
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end

local reason = ready.reason or ""
local message = ready.message or ""
if message ~= "" then
  message = reason .. ": " .. message
else
  message = reason
end
if ready.status == "True" then
  hs.status = "Healthy"
elseif ready.status == "False" and waiting[reason] then
  hs.status = "Progressing"
elseif ready.status == "False" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = message
return hs

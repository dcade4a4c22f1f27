-- examples/neovim/plugin/vpcep.lua: the commands of the vpcep plugin (see
-- :help vpcep). Nothing is loaded before a command is used.
--   :VpcepPending SERVICE_ID           a buffer of the pending connections (a accept, r reject, R refresh)
--   :VpcepAccept SERVICE_ID ID...      accept connections
--   :VpcepReject SERVICE_ID ID...      reject connections
if vim.g.loaded_vpcep then return end
vim.g.loaded_vpcep = true

vim.api.nvim_create_user_command("VpcepPending", function(o)
  require("vpcep_nvim.pending").open(o.fargs[1])
end, { nargs = 1, desc = "vpcep: list the pending connections of a VPC endpoint service" })

vim.api.nvim_create_user_command("VpcepAccept", function(o)
  require("vpcep_nvim").command("accept", o.fargs)
end, { nargs = "+", desc = "vpcep: accept connections (SERVICE_ID ID...)" })

vim.api.nvim_create_user_command("VpcepReject", function(o)
  require("vpcep_nvim").command("reject", o.fargs)
end, { nargs = "+", desc = "vpcep: reject connections (SERVICE_ID ID...)" })

-- :checkhealth vpcep (Neovim finds a check as lua/<name>/health.lua).
return { check = function() require("vpcep_nvim.health").check() end }
